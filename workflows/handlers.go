package workflows

import (
	"errors"
	"fmt"
	"slices"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/signing"
)

// decision is one Update a person can send: the pure check its validator
// runs, and what its handler records.
type decision struct {
	name   string
	check  func(workflow.Context, approval.Request) error
	decide func(workflow.Context, approval.Request) error
}

// timeless adapts a check that does not depend on the time.
func timeless(check func(approval.Request) error) func(workflow.Context, approval.Request) error {
	return func(_ workflow.Context, req approval.Request) error { return check(req) }
}

// registerHandlers wires the run's query and Updates. Handlers only validate
// and record; what a decision means lives in package approval, and what
// happens next is the main loop's business.
func (r *run) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryState, func() (approval.Run, error) {
		return r.state, nil
	}); err != nil {
		return fmt.Errorf("register query %s: %w", QueryState, err)
	}
	now := workflow.Now
	decisions := []decision{
		{UpdateApprove, timeless(r.state.CheckApprove), func(ctx workflow.Context, req approval.Request) error {
			_, err := r.state.Approve(req, now(ctx))
			return err
		}},
		{UpdateReject, timeless(r.state.CheckReject), func(ctx workflow.Context, req approval.Request) error {
			return r.state.Reject(req, now(ctx))
		}},
		{UpdateCancel, timeless(r.state.CheckCancel), func(ctx workflow.Context, req approval.Request) error {
			return r.state.Cancel(req, now(ctx))
		}},
		{UpdateRevoke, timeless(r.state.CheckRevoke), func(ctx workflow.Context, req approval.Request) error {
			return r.state.Revoke(req, now(ctx))
		}},
		{UpdateRequestChanges, timeless(r.state.CheckRequestChanges), func(ctx workflow.Context, req approval.Request) error {
			if err := r.state.RequestChanges(req, now(ctx)); err != nil {
				return err
			}
			r.outbox = append(r.outbox, activities.Event{
				Kind: activities.EventChangesRequested, Recipients: []approval.UserID{r.state.RequestedBy.ID},
				Actor: req.Actor.ID, Comment: req.Comment,
			})
			return nil
		}},
		{UpdateBypass, timeless(r.state.CheckBypass), func(ctx workflow.Context, req approval.Request) error {
			ids, err := r.state.Bypass(req, now(ctx))
			if err != nil {
				return err
			}
			r.outbox = append(r.outbox, activities.Event{
				Kind: activities.EventBypassed, Recipients: r.state.BypassedApprovers(ids), Reasons: ids,
				Actor: req.Actor.ID, Comment: req.Comment,
			})
			return nil
		}},
		{UpdateSupersede, timeless(r.state.CheckSupersede), func(ctx workflow.Context, req approval.Request) error {
			return r.state.Supersede(req, now(ctx))
		}},
		{UpdateRenotify, func(ctx workflow.Context, req approval.Request) error {
			return r.state.CheckRenotify(req, now(ctx))
		}, func(ctx workflow.Context, req approval.Request) error {
			who, err := r.state.Renotify(req, now(ctx))
			if err != nil {
				return err
			}
			r.outbox = append(r.outbox, activities.Event{
				Kind: activities.EventRenotify, Recipients: who, Reasons: r.state.OpenReasons(), Actor: req.Actor.ID,
			})
			return nil
		}},
	}
	for _, d := range decisions {
		handler := func(ctx workflow.Context, req approval.Request) (DecisionResult, error) {
			return r.record(ctx, req, d.decide)
		}
		validator := func(ctx workflow.Context, req approval.Request) error {
			if r.applied(ctx) {
				return nil // a retry from before a continue-as-new: answered by the handler
			}
			if err := r.authentic(ctx, d.name, req, req); err != nil {
				return updateError(err)
			}
			return updateError(d.check(ctx, req))
		}
		if err := workflow.SetUpdateHandlerWithOptions(ctx, d.name, handler, workflow.UpdateHandlerOptions{Validator: validator}); err != nil {
			return fmt.Errorf("register update %s: %w", d.name, err)
		}
	}

	revise := func(ctx workflow.Context, rp RevisePlanRequest) (DecisionResult, error) {
		return r.record(ctx, rp.Request, func(ctx workflow.Context, req approval.Request) error {
			// The gateway evaluated the workspace on the whole revised
			// plan and signed the result; the validator checked that.
			fresh := slices.Clone(rp.Reasons)
			if r.preIntegrity && workflow.GetVersion(ctx, versionReviseSigned, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
				// Recorded before the gateway evaluated revisions: evaluate
				// as the run did then, from the resources in the Update.
				plan := approval.Plan{PlanSummary: rp.Plan.PlanSummary, ResourceChanges: rp.Plan.Resources}
				fresh = approval.Evaluate(r.in.Workspace, plan, rp.Cost, r.state.RequestedBy, r.in.Directory)
			}
			return r.state.RevisePlan(req, rp.Plan.PlanSummary, rp.Cost, fresh, now(ctx))
		})
	}
	validateRevise := func(ctx workflow.Context, rp RevisePlanRequest) error {
		if r.applied(ctx) {
			return nil
		}
		if err := r.authentic(ctx, UpdateRevisePlan, rp.Request, rp); err != nil {
			return updateError(err)
		}
		if rp.Plan.SHA256 == "" {
			return updateError(approval.Errorf(approval.CodeInvalid, "plan: missing"))
		}
		return updateError(r.state.CheckRevisePlan(rp.Request))
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRevisePlan, revise, workflow.UpdateHandlerOptions{Validator: validateRevise}); err != nil {
		return fmt.Errorf("register update %s: %w", UpdateRevisePlan, err)
	}
	return nil
}

// record runs one decision under its Update's ID and answers with the
// decision's ID and the run's status: a small answer, since it is written to
// history. Callers read the run with the state query.
func (r *run) record(ctx workflow.Context, req approval.Request, decide func(workflow.Context, approval.Request) error) (DecisionResult, error) {
	// The Update ID, not whatever the caller put in the body, names the
	// decision: it is what Temporal deduplicates retries on.
	req.ID = workflow.GetCurrentUpdateInfo(ctx).ID
	r.answeredIn = workflow.GetInfo(ctx).GetCurrentHistoryLength() // the caller waits for this task
	if r.applied(ctx) {
		return DecisionResult{DecisionID: req.ID, Status: r.state.Status}, nil
	}
	queued := len(r.outbox)
	if err := decide(ctx, req); err != nil {
		return DecisionResult{}, updateError(err)
	}
	if !r.audited && r.noticeMu != nil && len(r.state.Messages) > 0 && len(r.outbox) == queued {
		// Live views show who decided what; decisions that have their
		// own notice (changes requested, bypass, renotify) already do.
		r.outbox = append(r.outbox, activities.Event{Kind: activities.EventDecided, Actor: req.Actor.ID, Comment: req.Comment, Reasons: req.ReasonIDs})
	}
	r.publish(ctx)
	return DecisionResult{DecisionID: req.ID, Status: r.state.Status}, nil
}

// authentic checks, in an Update's validator, that the gateway signed the
// request (arg is the Update's whole argument), recently, for this run and
// this Update ID, in the workspace the gateway named, and that its actor is
// a user of the worker's config with the same groups and roles. Anyone who reaches Temporal can send an
// Update; only what the gateway authenticated counts. Validators do not run
// on replay, so this may read the worker's keys and config.
func (r *run) authentic(ctx workflow.Context, update string, req approval.Request, arg any) error {
	info := workflow.GetCurrentUpdateInfo(ctx)
	forged := func(why string) error {
		return approval.Errorf(approval.CodeForbidden, "signature: %s: decisions count only through the Gatehouse gateway", why)
	}
	if r.runner.Keys == nil {
		return forged("this worker has no signing keys")
	}
	if info == nil || req.ID != info.ID {
		return forged("the request's id does not match its Update ID")
	}
	//workflowcheck:ignore validators do not run on replay, and encoding/json's map order is sorted anyway
	payload, err := DecisionPayload(update, workflow.GetInfo(ctx).WorkflowExecution.ID, info.ID, arg)
	if err != nil {
		return forged(err.Error())
	}
	if err := r.runner.Keys.Verify(payload, req.Signature); err != nil {
		return forged("the request is " + err.Error())
	}
	if age := workflow.Now(ctx).Sub(req.IssuedAt); age > signing.MaxAge || age < -signing.MaxAge {
		return forged("signed at " + req.IssuedAt.UTC().Format("2006-01-02T15:04:05Z") + ", too long ago")
	}
	if req.Workspace != "" && req.Workspace != r.state.Workspace {
		// Said as the gateway says it of a run it cannot find there.
		return approval.Errorf(approval.CodeNotFound, "run %q not found in workspace %q", r.state.ID, req.Workspace)
	}
	if r.runner.Verify == nil {
		return forged("this worker knows no users")
	}
	if err := r.runner.Verify(req.Actor); err != nil {
		return approval.Errorf(approval.CodeForbidden, "actor: %v", err)
	}
	return nil
}

// applied reports whether the current Update's ID is already in the trail.
// Temporal deduplicates Update IDs within one workflow run; the trail carries
// them across continue-as-new, so a retry after it is answered, not applied
// again.
func (r *run) applied(ctx workflow.Context) bool {
	info := workflow.GetCurrentUpdateInfo(ctx)
	if info == nil || r.legacy {
		return false
	}
	return slices.ContainsFunc(r.state.Decisions, func(d approval.Decision) bool { return d.ID == info.ID })
}

// updateError turns a domain error into an application error whose type is
// the domain code, so clients can map it back without parsing messages.
func updateError(err error) error {
	if err == nil {
		return nil
	}
	var de *approval.Error
	if errors.As(err, &de) {
		return temporal.NewApplicationErrorWithOptions(de.Message, string(de.Code), temporal.ApplicationErrorOptions{
			NonRetryable: true,
			// Clients read the retry delay of a rate-limited request here.
			Details: []any{de.RetryAfter.Seconds()},
		})
	}
	return err
}
