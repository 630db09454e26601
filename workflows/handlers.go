package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// registerHandlers wires the run's query and decision Updates. Handlers only
// validate and record; what a decision means lives in package approval, and
// what happens next is the main function's business.
func (r *run) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (approval.Run, error) {
		return r.state, nil
	}); err != nil {
		return fmt.Errorf("register query %s: %w", QueryState, err)
	}
	decisions := []struct {
		name   string
		check  func(approval.Request) error
		decide func(workflow.Context, approval.Request) error
	}{
		{UpdateApprove, r.state.CheckApprove, func(ctx workflow.Context, req approval.Request) error {
			_, err := r.state.Approve(req, workflow.Now(ctx))
			return err
		}},
		{UpdateReject, r.state.CheckReject, func(ctx workflow.Context, req approval.Request) error {
			return r.state.Reject(req, workflow.Now(ctx))
		}},
		{UpdateCancel, r.state.CheckCancel, func(ctx workflow.Context, req approval.Request) error {
			return r.state.Cancel(req, workflow.Now(ctx))
		}},
	}
	for _, d := range decisions {
		handler := func(ctx workflow.Context, req approval.Request) (approval.Run, error) {
			// The Update ID, not whatever the caller put in the body, names
			// the decision: it is what Temporal deduplicates retries on.
			req.ID = workflow.GetCurrentUpdateInfo(ctx).ID
			if err := d.decide(ctx, req); err != nil {
				return approval.Run{}, updateError(err)
			}
			r.publish(ctx)
			return r.state.Clone(), nil
		}
		validator := func(ctx workflow.Context, req approval.Request) error {
			return updateError(d.check(req))
		}
		if err := workflow.SetUpdateHandlerWithOptions(ctx, d.name, handler, workflow.UpdateHandlerOptions{Validator: validator}); err != nil {
			return fmt.Errorf("register update %s: %w", d.name, err)
		}
	}
	return nil
}

// updateError turns a domain error into an application error whose type is
// the domain code, so clients can map it back without parsing messages.
func updateError(err error) error {
	if err == nil {
		return nil
	}
	var de *approval.Error
	if errors.As(err, &de) {
		return temporal.NewNonRetryableApplicationError(de.Message, string(de.Code), nil)
	}
	return err
}
