package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// Search attributes the run workflow keeps current, so operators can find
// runs in the Temporal Web UI and the gateway can list them. Keys are values,
// not state: they never change.
var (
	StatusKey    = temporal.NewSearchAttributeKeyKeyword("GatehouseStatus")
	WorkspaceKey = temporal.NewSearchAttributeKeyKeyword("GatehouseWorkspace")
)

// SearchAttributes lists every custom search attribute Gatehouse uses with
// its type, for registering them on a namespace.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		StatusKey.GetName():    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		WorkspaceKey.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	}
}
