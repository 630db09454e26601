package starter

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/gatehouse-dev/gatehouse/workflows"
)

// RegisterSearchAttributes adds to namespace every Gatehouse search attribute
// it lacks. It is safe to call on every start: attributes already there are
// left alone, so an old namespace gains the ones a newer Gatehouse added.
func RegisterSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of %s: %w", namespace, err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range workflows.SearchAttributes() {
		got, ok := have.GetCustomAttributes()[name]
		switch {
		case !ok:
			missing[name] = typ
		case got != typ:
			return fmt.Errorf("search attribute %s exists in %s as %s; Gatehouse needs %s", name, namespace, got, typ)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: missing,
	}); err != nil {
		if isPermissionDenied(err) {
			// Name what is missing, so that whoever has the right (an
			// operator, or the Temporal Cloud UI) can add them by hand.
			names := make([]string, 0, len(missing))
			for name, typ := range missing {
				names = append(names, name+" ("+typ.String()+")")
			}
			slices.Sort(names)
			return fmt.Errorf("add search attributes to %s: %w (adding them needs operator rights on the namespace; "+
				"or add them in the Temporal Cloud UI or with tcld: %s)", namespace, err, strings.Join(names, ", "))
		}
		return fmt.Errorf("add search attributes to %s: %w", namespace, err)
	}
	return nil
}

func searchAttrString(sa *commonpb.SearchAttributes, name string) string {
	p, ok := sa.GetIndexedFields()[name]
	if !ok {
		return ""
	}
	var s string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		return ""
	}
	return s
}

func searchAttrTime(sa *commonpb.SearchAttributes, name string) *time.Time {
	p, ok := sa.GetIndexedFields()[name]
	if !ok {
		return nil
	}
	var t time.Time
	if err := converter.GetDefaultDataConverter().FromPayload(p, &t); err != nil || t.IsZero() {
		return nil
	}
	return &t
}

func searchAttrStrings(sa *commonpb.SearchAttributes, name string) []string {
	p, ok := sa.GetIndexedFields()[name]
	if !ok {
		return nil
	}
	var s []string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &s); err != nil {
		return nil
	}
	return s
}
