package starter

import (
	"context"
	"fmt"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/types/known/durationpb"

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

// SetRetention sets how long the namespace keeps the histories of closed
// workflows. Temporal deletes them after that; Gatehouse's audit trail, not
// Temporal, is the lasting record of who approved what, so this is a choice
// of how long operators can inspect finished runs in the Web UI.
func SetRetention(ctx context.Context, c client.Client, namespace string, retention time.Duration) error {
	if retention < 24*time.Hour {
		return fmt.Errorf("retention %s: Temporal keeps closed workflows at least a day (24h)", retention)
	}
	if _, err := c.WorkflowService().UpdateNamespace(ctx, &workflowservice.UpdateNamespaceRequest{
		Namespace: namespace,
		Config:    &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(retention)},
	}); err != nil {
		return fmt.Errorf("set retention of %s to %s: %w", namespace, retention, err)
	}
	return nil
}

// Retention reads the namespace's retention of closed workflows.
func Retention(ctx context.Context, c client.Client, namespace string) (time.Duration, error) {
	ns, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	if err != nil {
		return 0, fmt.Errorf("describe namespace %s: %w", namespace, err)
	}
	return ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(), nil
}
