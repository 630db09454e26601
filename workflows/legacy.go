package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gatehouse-dev/gatehouse/activities"
)

// This file keeps the behaviour of runs started before versionDurableTime
// (workflow.DefaultVersion): they wait only for their deadline, notify
// synchronously and publish only their status. Replaying their histories
// must produce the same commands, which testdata/history-*.json checks.
// Delete it once no such run can still be open (their 30-day retention
// after the last of them closed).

// waitForPeopleV0 waits until something changes or the deadline passes.
func (r *run) waitForPeopleV0(ctx workflow.Context) error {
	status, deadline := r.state.Status, r.state.Deadline
	changed := func() bool {
		return r.state.Status != status || !r.state.Deadline.Equal(deadline) || len(r.outbox) > 0 || len(r.unannounced()) > 0
	}
	var decided bool
	var err error
	if wait := deadline.Sub(workflow.Now(ctx)); wait > 0 {
		decided, err = workflow.AwaitWithTimeout(ctx, wait, changed)
	}
	switch {
	case temporal.IsCanceledError(err):
		r.cancelledInTemporal(ctx)
	case err != nil:
		return fmt.Errorf("wait for decisions: %w", err)
	case !decided && !changed():
		r.state.TimeOut(workflow.Now(ctx))
		r.publish(ctx)
	}
	return nil
}

// notifyV0 delivers a notice and waits for it.
func (r *run) notifyV0(ctx workflow.Context, e activities.Event) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, InitialInterval: time.Second},
	})
	var a *activities.Activities
	if err := workflow.ExecuteActivity(actx, a.Notify, e).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("notification failed", "event", e.Kind, "error", err)
	}
}

// publishV0 upserts status and workspace when the status changes.
func (r *run) publishV0(ctx workflow.Context) {
	if r.published.status == r.state.Status {
		return
	}
	err := workflow.UpsertTypedSearchAttributes(ctx,
		StatusKey.ValueSet(string(r.state.Status)),
		WorkspaceKey.ValueSet(r.state.Workspace),
	)
	if err != nil {
		workflow.GetLogger(ctx).Warn("upsert search attributes failed", "error", err)
		return
	}
	r.published.status = r.state.Status
}
