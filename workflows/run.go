// Package workflows holds the run workflow: one Terraform/OpenTofu plan on its
// way through approval to apply. The workflow is deterministic: it keeps the
// run's state (an approval.Run), lets Update handlers validate and record
// decisions on it with the pure rules of package approval, waits on durable
// timers, and leaves every side effect to activities.
package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
)

// Names under which the workflow and its messages are known to clients.
const (
	RunWorkflowName = "GatehouseRun"
	QueryState      = "state"
	UpdateApprove   = "approve"
	UpdateReject    = "reject"
	UpdateCancel    = "cancel"
)

// DefaultApplyTimeout bounds an apply when the workspace does not say.
const DefaultApplyTimeout = time.Hour

// RunInput is everything a run starts from. It is a snapshot: later config
// changes do not alter a run in flight. It carries no secrets and no plan
// attribute values, because it is stored in workflow history.
type RunInput struct {
	Workspace     approval.Workspace   `json:"workspace"`
	RequestedBy   approval.Identity    `json:"requested_by"`
	Message       string               `json:"message,omitempty"`
	Plan          approval.PlanSummary `json:"plan"`
	Directory     []approval.Identity  `json:"directory,omitempty"`
	ConfigVersion string               `json:"config_version,omitempty"`
	ApplyTimeout  time.Duration        `json:"apply_timeout,omitempty"`
}

// Run is the run workflow. It returns the final run state, so a finished run
// stays readable from its result without a worker.
func Run(ctx workflow.Context, in RunInput) (approval.Run, error) {
	r := &run{
		in: in,
		state: approval.NewRun(approval.NewRunParams{
			ID:            workflow.GetInfo(ctx).WorkflowExecution.ID,
			Workspace:     in.Workspace,
			RequestedBy:   in.RequestedBy,
			Message:       in.Message,
			Plan:          in.Plan,
			Directory:     in.Directory,
			ConfigVersion: in.ConfigVersion,
		}, workflow.Now(ctx)),
	}
	if err := r.registerHandlers(ctx); err != nil {
		return approval.Run{}, err
	}
	r.publish(ctx)

	if err := r.awaitDecision(ctx); err != nil {
		return r.state, err
	}
	if r.state.Status == approval.StatusApproved {
		r.apply(ctx)
	}
	r.notify(ctx, activities.EventFinished)

	// Let Updates that arrived with the final decision reply before we close.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return r.state, err
	}
	return r.state, nil
}

// run is the workflow's state and its steps.
type run struct {
	in        RunInput
	state     approval.Run
	published approval.Status
}

// awaitDecision waits, on a durable timer, until a person decides or the
// deadline passes. It fails closed: when time runs out the run ends
// timed_out and never applies.
func (r *run) awaitDecision(ctx workflow.Context) error {
	if r.state.Status != approval.StatusPendingApproval {
		return nil
	}
	r.notify(ctx, activities.EventApprovalRequested)
	wait := r.state.Deadline.Sub(workflow.Now(ctx))
	decided, err := workflow.AwaitWithTimeout(ctx, wait, func() bool {
		return r.state.Status != approval.StatusPendingApproval
	})
	switch {
	case temporal.IsCanceledError(err):
		// Cancelled from Temporal itself (Web UI or CLI): record it as a
		// cancellation so the run's result says what happened.
		r.state.CancelBySystem("the workflow was cancelled in Temporal", workflow.Now(ctx))
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		r.publish(dctx)
		return nil
	case err != nil:
		return fmt.Errorf("await decision: %w", err)
	case !decided:
		outcome := r.in.Workspace.OnTimeout
		if !outcome.Valid() {
			outcome = approval.OutcomeReject
		}
		r.state.TimeOut(outcome, workflow.Now(ctx))
		r.publish(ctx)
	}
	return nil
}

// apply runs exactly the approved plan, once: a started apply is never
// retried automatically, because running it twice is worse than failing.
func (r *run) apply(ctx workflow.Context) {
	r.state.StartApply(workflow.Now(ctx))
	r.publish(ctx)

	timeout := r.in.ApplyTimeout
	if timeout <= 0 {
		timeout = DefaultApplyTimeout
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		// A worker that dies mid-apply stops heartbeating; the run then
		// fails instead of waiting for the whole timeout.
		HeartbeatTimeout: time.Minute,
		RetryPolicy:      &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var a *activities.Activities
	var res approval.ApplyResult
	err := workflow.ExecuteActivity(actx, a.Apply, activities.ApplyInput{
		RunID:      r.state.ID,
		Workspace:  r.state.Workspace,
		PlanSHA256: r.state.Plan.SHA256,
	}).Get(ctx, &res)
	if err != nil {
		res = approval.ApplyResult{Executed: res.Executed, Error: "apply did not complete: " + rootMessage(err)}
	}
	r.state.FinishApply(res, workflow.Now(ctx))
	r.publish(ctx)
}

// notify tells people what happened. Notification is best effort: a failing
// notifier is logged and never blocks or fails the run.
func (r *run) notify(ctx workflow.Context, kind activities.EventKind) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, InitialInterval: time.Second},
	})
	var a *activities.Activities
	event := activities.Event{
		Kind:             kind,
		RunID:            r.state.ID,
		Workspace:        r.state.Workspace,
		Status:           r.state.Status,
		RequestedBy:      r.state.RequestedBy.ID,
		PendingApprovers: r.state.PendingApprovers(),
		Deadline:         r.state.Deadline,
	}
	if err := workflow.ExecuteActivity(actx, a.Notify, event).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("notification failed", "event", kind, "error", err)
	}
}

// publish keeps the search attributes that operators filter on in step with
// the run's status.
func (r *run) publish(ctx workflow.Context) {
	if r.published == r.state.Status {
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
	r.published = r.state.Status
}

// rootMessage is the innermost error message: the activity's own words rather
// than the wrapping the SDK adds.
func rootMessage(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
