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
	RunWorkflowName      = "GatehouseRun"
	QueryState           = "state"
	UpdateApprove        = "approve"
	UpdateReject         = "reject"
	UpdateCancel         = "cancel"
	UpdateRevoke         = "revoke"
	UpdateRequestChanges = "request_changes"
	UpdateRevisePlan     = "revise_plan"
	UpdateBypass         = "bypass"
)

// DefaultApplyTimeout bounds an apply when the workspace does not say.
const DefaultApplyTimeout = time.Hour

// RunInput is everything a run starts from. It is a snapshot: later config
// changes do not alter a run in flight. It carries no secrets and no plan
// attribute values, because it is stored in workflow history.
type RunInput struct {
	Workspace   approval.Workspace `json:"workspace"`
	RequestedBy approval.Identity  `json:"requested_by"`
	// SubmittedBy is the automation that submitted the run on behalf of
	// RequestedBy, if any.
	SubmittedBy   *approval.Identity   `json:"submitted_by,omitempty"`
	Message       string               `json:"message,omitempty"`
	Plan          approval.PlanSummary `json:"plan"`
	Directory     []approval.Identity  `json:"directory,omitempty"`
	ConfigVersion string               `json:"config_version,omitempty"`
	ApplyTimeout  time.Duration        `json:"apply_timeout,omitempty"`
}

// RevisePlanRequest is the argument of the revise_plan Update: the requester
// and the summary of the plan that replaces the current one.
type RevisePlanRequest struct {
	Request approval.Request     `json:"request"`
	Plan    approval.PlanSummary `json:"plan"`
}

// Run is the run workflow: it waits for people while the run waits for
// them, applies once when everything before apply is approved, and ends when
// the run reaches a final status. It returns the final run state, so a
// finished run stays readable from its result without a worker.
func Run(ctx workflow.Context, in RunInput) (approval.Run, error) {
	r := newRun(ctx, in)
	if err := r.registerHandlers(ctx); err != nil {
		return approval.Run{}, err
	}
	r.publish(ctx)

	for !r.state.Status.Final() {
		r.sendNotices(ctx)
		switch {
		case r.state.Status == approval.StatusApproved:
			r.apply(ctx)
		case r.state.Status.Waiting():
			if err := r.waitForPeople(ctx); err != nil {
				return r.state, err
			}
		default:
			return r.state, fmt.Errorf("run is %s: nothing moves it on", r.state.Status)
		}
	}
	r.sendNotices(ctx)
	r.notify(ctx, activities.Event{Kind: activities.EventFinished})

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
	// announced holds "reason@round" for every reason whose approvers were
	// asked, so each opening is announced once.
	announced map[string]bool
	// outbox holds notices that handlers queued for the main loop to send.
	outbox []activities.Event
}

func newRun(ctx workflow.Context, in RunInput) *run {
	return &run{
		in:        in,
		announced: map[string]bool{},
		state: approval.NewRun(approval.NewRunParams{
			ID:            workflow.GetInfo(ctx).WorkflowExecution.ID,
			Workspace:     in.Workspace,
			RequestedBy:   in.RequestedBy,
			SubmittedBy:   in.SubmittedBy,
			Message:       in.Message,
			Plan:          in.Plan,
			Directory:     in.Directory,
			ConfigVersion: in.ConfigVersion,
		}, workflow.Now(ctx)),
	}
}

// waitForPeople waits, on a durable timer, until something changes: a
// decision moves the run, a new stage or round restarts the clock, or there
// is news to send. If the deadline passes first the run fails closed: it ends
// timed_out and never applies.
func (r *run) waitForPeople(ctx workflow.Context) error {
	status, deadline := r.state.Status, r.state.Deadline
	changed := func() bool {
		return r.state.Status != status || !r.state.Deadline.Equal(deadline) || len(r.outbox) > 0 || len(r.unannounced()) > 0
	}
	wait := deadline.Sub(workflow.Now(ctx))
	var decided bool
	var err error
	if wait > 0 {
		decided, err = workflow.AwaitWithTimeout(ctx, wait, changed)
	}
	switch {
	case temporal.IsCanceledError(err):
		// Cancelled from Temporal itself (Web UI or CLI): record it as a
		// cancellation so the run's result says what happened.
		r.state.CancelBySystem("the workflow was cancelled in Temporal", workflow.Now(ctx))
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		r.publish(dctx)
		return nil
	case err != nil:
		return fmt.Errorf("wait for decisions: %w", err)
	case !decided && !changed():
		r.state.TimeOut(workflow.Now(ctx))
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

// unannounced lists the open reasons whose approvers have not been asked in
// this round.
func (r *run) unannounced() []string {
	round := len(r.state.Rounds)
	var out []string
	for _, id := range r.state.OpenReasons() {
		if !r.announced[fmt.Sprintf("%s@%d", id, round)] {
			out = append(out, id)
		}
	}
	return out
}

// sendNotices asks the approvers of newly opened reasons and sends what the
// handlers queued.
func (r *run) sendNotices(ctx workflow.Context) {
	if ids := r.unannounced(); len(ids) > 0 {
		for _, id := range ids {
			r.announced[fmt.Sprintf("%s@%d", id, len(r.state.Rounds))] = true
		}
		r.outbox = append(r.outbox, activities.Event{
			Kind: activities.EventApprovalRequested, Reasons: ids, Recipients: r.state.PendingApprovers(),
		})
	}
	batch := r.outbox
	r.outbox = nil
	for _, e := range batch {
		r.notify(ctx, e)
	}
}

// notify tells people what happened. Notification is best effort: a failing
// notifier is logged and never blocks or fails the run.
func (r *run) notify(ctx workflow.Context, e activities.Event) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, InitialInterval: time.Second},
	})
	e.RunID, e.Workspace, e.Status = r.state.ID, r.state.Workspace, r.state.Status
	e.RequestedBy, e.Deadline = r.state.RequestedBy.ID, r.state.Deadline
	var a *activities.Activities
	if err := workflow.ExecuteActivity(actx, a.Notify, e).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("notification failed", "event", e.Kind, "error", err)
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
