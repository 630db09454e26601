package starter

import (
	"context"
	"errors"
	"fmt"
	"time"

	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"
)

// MinRetention is the shortest retention Temporal accepts for a namespace.
const MinRetention = 24 * time.Hour

// NamespaceChange says what EnsureNamespace did.
type NamespaceChange struct {
	// Created: the namespace did not exist and was registered.
	Created bool
	// RetentionFrom is the retention the namespace had before
	// EnsureNamespace changed it; 0 when it was left alone (or created).
	RetentionFrom time.Duration
}

// Changed reports whether EnsureNamespace wrote anything.
func (n NamespaceChange) Changed() bool { return n.Created || n.RetentionFrom != 0 }

// EnsureNamespace makes namespace exist with the given retention of closed
// workflows: it registers the namespace when Temporal says it does not
// exist, sets the retention when it differs, and otherwise writes nothing,
// so that running it on every deployment is safe.
//
// Registering needs the right to create namespaces (a cluster admin on a
// self-hosted cluster); Temporal Cloud refuses it to any client, which then
// gets an error saying to create the namespace in Cloud.
func EnsureNamespace(ctx context.Context, c client.Client, namespace string, retention time.Duration) (NamespaceChange, error) {
	if retention < MinRetention {
		return NamespaceChange{}, fmt.Errorf("retention %s: Temporal keeps closed workflows at least a day (24h)", retention)
	}
	ns, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
	switch {
	case isNamespaceNotFound(err):
		return registerNamespace(ctx, c, namespace, retention)
	case err != nil:
		return NamespaceChange{}, fmt.Errorf("describe namespace %s: %w", namespace, err)
	}
	return ensureRetention(ctx, c, namespace, ns, retention)
}

// ensureRetention sets the retention of namespace, as ns describes it, when
// it differs from retention.
func ensureRetention(ctx context.Context, c client.Client, namespace string, ns *workflowservice.DescribeNamespaceResponse, retention time.Duration) (NamespaceChange, error) {
	have := ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration()
	if have == retention {
		return NamespaceChange{}, nil
	}
	if err := SetRetention(ctx, c, namespace, retention); err != nil {
		if isPermissionDenied(err) {
			return NamespaceChange{}, fmt.Errorf("%w (the namespace keeps closed runs %s; on Temporal Cloud set the retention in the Cloud UI or with tcld, "+
				"then pass the same --retention so that setup finds nothing to change)", err, have)
		}
		return NamespaceChange{}, err
	}
	return NamespaceChange{RetentionFrom: have}, nil
}

func registerNamespace(ctx context.Context, c client.Client, namespace string, retention time.Duration) (NamespaceChange, error) {
	_, err := c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace:                        namespace,
		Description:                      "Gatehouse approval runs",
		WorkflowExecutionRetentionPeriod: durationpb.New(retention),
	})
	var exists *serviceerror.NamespaceAlreadyExists
	switch {
	case errors.As(err, &exists):
		// Another setup registered it between our describe and register:
		// it exists now, so check its retention as for any existing one.
		// Described once more only (no loop back to registering): if
		// Temporal still says it is missing, a later try may see it.
		ns, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
		if err != nil {
			return NamespaceChange{}, fmt.Errorf("describe namespace %s, which Temporal says exists: %w", namespace, err)
		}
		return ensureRetention(ctx, c, namespace, ns, retention)
	case isPermissionDenied(err):
		return NamespaceChange{}, fmt.Errorf("namespace %s does not exist and this client may not create it: %w "+
			"(creating a namespace needs a cluster admin; on Temporal Cloud create it in the Cloud UI or with tcld, "+
			"then setup finds it and only registers the search attributes)", namespace, err)
	case err != nil:
		return NamespaceChange{}, fmt.Errorf("register namespace %s: %w", namespace, err)
	}
	return NamespaceChange{Created: true}, nil
}

// SetRetention sets how long the namespace keeps the histories of closed
// workflows. Temporal deletes them after that; Gatehouse's audit trail, not
// Temporal, is the lasting record of who approved what, so this is a choice
// of how long operators can inspect finished runs in the Web UI.
func SetRetention(ctx context.Context, c client.Client, namespace string, retention time.Duration) error {
	if retention < MinRetention {
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

func isNamespaceNotFound(err error) bool {
	var nsNotFound *serviceerror.NamespaceNotFound
	return errors.As(err, &nsNotFound) || isNotFound(err)
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

func isPermissionDenied(err error) bool {
	var pd *serviceerror.PermissionDenied
	return errors.As(err, &pd)
}

// Transient reports whether err is one a retry may cure: Temporal not
// answering yet (starting, restarting, behind a load balancer warming up),
// or a namespace just created that not every Temporal service knows yet.
func Transient(err error) bool {
	var (
		unavailable *serviceerror.Unavailable
		deadline    *serviceerror.DeadlineExceeded
		exhausted   *serviceerror.ResourceExhausted
		nsNotFound  *serviceerror.NamespaceNotFound
	)
	return errors.As(err, &unavailable) || errors.As(err, &deadline) || errors.As(err, &exhausted) ||
		errors.As(err, &nsNotFound) || isNotFound(err) ||
		errors.Is(err, context.DeadlineExceeded)
}
