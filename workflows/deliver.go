package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
)

// This file is the run's way from a plan Gatehouse makes itself, and from
// approval to apply: planning, the freeze windows, the workspace's apply
// lock, the approvals' time to live, the re-plan before apply, and the
// apply itself.

// Defaults for planning and the apply queue.
const (
	DefaultPlanTimeout = time.Hour
	DefaultLockRetry   = 10 * time.Second
	// activityMargin lets a command that the worker bounds by a timeout
	// report its own timeout before Temporal's deadline for the activity
	// (which would turn an apply into outcome_unknown) fires.
	activityMargin = 3 * time.Minute
)

// planRun plans a terraform workspace for the run, once: a plan that
// changes nothing ends the run no_changes and one that fails plan_failed,
// before anyone is asked. A delivery that touched none of the workspace's
// paths ends it no_changes without planning.
func (r *run) planRun(ctx workflow.Context) {
	now := func() time.Time { return workflow.Now(ctx) }
	if r.in.ChangedSince != "" && len(r.in.Paths) > 0 {
		if matched, why := r.changedPaths(ctx); !matched {
			_ = r.state.NoChanges(why, now())
			r.publish(ctx)
			return
		}
	}
	out, err := r.plan(ctx, "", 1)
	switch {
	case temporal.IsCanceledError(err):
		r.cancelledInTemporal(ctx)
		return
	case err != nil:
		_ = r.state.PlanFailed("the plan did not complete: "+rootMessage(err), approval.Origin{}, now())
	case out.Result == activities.PlanNoChanges:
		r.state.Origin = r.mergeOrigin(out.Origin)
		_ = r.state.NoChanges("the plan changes nothing", now())
	case out.Result == activities.PlanPlanned:
		if err := r.state.PlanReady(out.Plan, out.Reasons, *r.mergeOrigin(out.Origin), now()); err != nil {
			workflow.GetLogger(ctx).Info("plan arrived after the run was decided", "status", r.state.Status)
		}
	default:
		_ = r.state.PlanFailed(out.Error, *r.mergeOrigin(out.Origin), now())
	}
	r.publish(ctx)
}

// mergeOrigin keeps what started the run with what planning found.
func (r *run) mergeOrigin(found approval.Origin) *approval.Origin {
	if o := r.state.Origin; o != nil {
		found.Trigger, found.Delivery, found.Repository, found.Actor = o.Trigger, o.Delivery, o.Repository, o.Actor
		if found.Ref == "" {
			found.Ref = o.Ref
		}
	}
	return &found
}

// plan runs the Plan activity: at commit ("" for the run's ref) as round.
func (r *run) plan(ctx workflow.Context, commit string, round int) (activities.PlanOutcome, error) {
	timeout := r.in.PlanTimeout
	if timeout <= 0 {
		timeout = DefaultPlanTimeout
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// The worker bounds the plan by the timeout itself and reports
		// it as plan_failed; Temporal's deadline is the backstop.
		StartToCloseTimeout: timeout + activityMargin,
		HeartbeatTimeout:    time.Minute,
		// Planning changes nothing: a worker that died may plan again.
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
	in := activities.PlanInput{RunID: r.state.ID, Workspace: r.state.Workspace, Commit: commit,
		RequestedBy: r.state.RequestedBy, Round: round}
	if o := r.state.Origin; o != nil {
		in.Ref = o.Ref
		if commit == "" {
			in.Commit = o.Commit
		}
	}
	var a *activities.Activities
	var out activities.PlanOutcome
	err := workflow.ExecuteActivity(actx, a.Plan, in).Get(ctx, &out)
	return out, err
}

// changedPaths asks whether the delivery touched the workspace's paths. A
// diff that cannot be made counts as touched: planning asks people, which
// is the safe side.
func (r *run) changedPaths(ctx workflow.Context) (bool, string) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
	commit := ""
	if r.state.Origin != nil {
		commit = r.state.Origin.Commit
	}
	var a *activities.Activities
	var res activities.ChangedPathsResult
	err := workflow.ExecuteActivity(actx, a.ChangedPaths, activities.ChangedPathsInput{
		Workspace: r.state.Workspace, Since: r.in.ChangedSince, Commit: commit, Paths: r.in.Paths,
	}).Get(ctx, &res)
	if err != nil || res.Matched {
		return true, ""
	}
	return false, fmt.Sprintf("no file under %s changed between %s and %s", strings.Join(r.in.Paths, ", "), short(r.in.ChangedSince), short(commit))
}

// deliver moves an approved run on towards its apply, one step a call, so
// the main loop sees every change in between: wait out a freeze window,
// take the workspace's apply lock (queued while another run holds it),
// void approvals past their time to live, plan again when the workspace
// asks, and apply. A run that goes back to people gives the lock back.
// Gate-only runs never get here: approved is where they end.
func (r *run) deliver(ctx workflow.Context) {
	now := workflow.Now(ctx)
	ws := r.in.Workspace
	if len(ws.Freeze) > 0 && !r.thawed {
		if r.waitOutFreeze(ctx) {
			return // the freeze ended the wait, or something else did: look again
		}
	}
	if !r.state.Locked {
		res, err := r.acquireLock(ctx)
		if err != nil {
			r.state.Refuse("the workspace's apply lock could not be taken: "+rootMessage(err), now)
			r.publish(ctx)
			return
		}
		if !res.Granted {
			_ = r.state.Queue(res.Holder, now)
			r.publish(ctx)
			return
		}
		r.state.Locked = true
	}
	if ws.ApprovalTTL > 0 {
		reopened, err := r.state.ExpireApprovals(ws.ApprovalTTL, now)
		if err == nil && len(reopened) > 0 {
			r.backToPeople(ctx)
			return
		}
	}
	if r.in.Replan && r.state.Mode == approval.ModeTerraform && !r.replanned {
		r.replanned = true
		if !r.replanBeforeApply(ctx, "the plan changed before apply") {
			return
		}
	}
	if err := r.state.StartApply(workflow.Now(ctx)); err != nil {
		return // cancelled meanwhile
	}
	r.publish(ctx)
	r.sendAudit(ctx)
	res := r.runApply(ctx)
	if res.StalePlan {
		// Nothing was applied: the state moved since the plan. Plan again
		// and let people see what changed.
		r.replanStale(ctx)
		return
	}
	if err := r.state.FinishApply(res, workflow.Now(ctx)); err != nil {
		workflow.GetLogger(ctx).Error("apply result not recorded", "error", err)
	}
	r.releaseLock(ctx)
	r.publish(ctx)
}

// waitOutFreeze holds an approved run while a freeze window is open, on a
// durable timer, until the window ends or an admin bypasses it. It reports
// whether it waited (the caller looks at the run again).
func (r *run) waitOutFreeze(ctx workflow.Context) bool {
	var f approval.Freeze
	var frozen bool
	windows := r.in.Workspace.Freeze
	// Cron schedules may name time zones, which are read from the system's
	// zone data: computed once, and recorded.
	encoded := workflow.SideEffect(ctx, func(workflow.Context) any {
		f, ok := approval.FrozenUntil(windows, workflow.Now(ctx))
		if !ok {
			return approval.Freeze{}
		}
		return f
	})
	if err := encoded.Get(&f); err != nil {
		f = approval.Freeze{Until: workflow.Now(ctx).Add(24 * time.Hour), Reason: "freeze windows could not be read (fail closed)"}
	}
	frozen = !f.Until.IsZero()
	if !frozen || r.state.FreezeBypassed() {
		r.thawed = true
		return false
	}
	if err := r.state.FreezeUntil(f, workflow.Now(ctx)); err != nil {
		return true
	}
	r.publish(ctx)
	wait := f.Until.Sub(workflow.Now(ctx))
	_, err := workflow.AwaitWithTimeout(ctx, wait, func() bool {
		return r.state.Frozen == nil || r.state.Status != approval.StatusApproved
	})
	if temporal.IsCanceledError(err) {
		r.cancelledInTemporal(ctx)
		return true
	}
	r.state.Thaw(workflow.Now(ctx))
	r.thawed = true
	r.publish(ctx)
	return true
}

// waitInQueue waits a while, then asks for the apply lock again. A
// decision (a cancel) ends the wait early.
func (r *run) waitInQueue(ctx workflow.Context) {
	retry := r.in.LockRetry
	if retry <= 0 {
		retry = DefaultLockRetry
	}
	_, err := workflow.AwaitWithTimeout(ctx, retry, func() bool { return r.state.Status != approval.StatusQueued })
	r.wakeups++
	switch {
	case temporal.IsCanceledError(err):
		r.cancelledInTemporal(ctx)
		return
	case r.state.Status != approval.StatusQueued:
		return
	}
	res, err := r.acquireLock(ctx)
	if err != nil || !res.Granted {
		if res.Holder != "" && res.Holder != r.state.QueuedBehind {
			_ = r.state.Queue(res.Holder, workflow.Now(ctx))
			r.publish(ctx)
		}
		return
	}
	r.state.Locked = true
	_ = r.state.Unqueue(workflow.Now(ctx))
	r.publish(ctx)
}

// replanBeforeApply plans again at the approved commit. Identical changes
// (every address, action and digest) go on to apply the fresh plan file;
// anything else sends the run back to people as a new round, approvals kept
// only where nothing they covered changed. It reports whether to apply now.
func (r *run) replanBeforeApply(ctx workflow.Context, why string) bool {
	commit := ""
	if r.state.Origin != nil {
		commit = r.state.Origin.Commit
	}
	out, err := r.plan(ctx, commit, len(r.state.Rounds)+1)
	now := workflow.Now(ctx)
	switch {
	case temporal.IsCanceledError(err):
		r.cancelledInTemporal(ctx)
		return false
	case err != nil:
		r.state.Refuse("the re-plan before apply did not complete: "+rootMessage(err), now)
	case out.Result == activities.PlanNoChanges:
		_ = r.state.NoChanges("the re-plan before apply changes nothing", now)
	case out.Result != activities.PlanPlanned:
		r.state.Refuse("the re-plan before apply failed: "+out.Error, now)
	case out.Plan.ChangesDigest == r.state.Plan.ChangesDigest:
		// The same changes, planned against the state as it is now.
		origin := r.mergeOrigin(out.Origin)
		r.state.Origin = origin
		return true
	default:
		if err := r.state.Replanned(out.Plan, out.Reasons, *r.mergeOrigin(out.Origin), why, now); err != nil {
			return false
		}
	}
	r.backToPeople(ctx)
	return false
}

// replanStale handles an apply whose saved plan Terraform found stale.
func (r *run) replanStale(ctx workflow.Context) {
	r.replanned = true
	if err := r.state.StaleApply(workflow.Now(ctx)); err != nil {
		return
	}
	if r.replanBeforeApply(ctx, "the saved plan was stale when the apply ran") {
		// The same changes again: still, this plan was never approved as
		// a file, so ask people rather than apply behind their back.
		_ = r.state.Replanned(r.state.Plan, nil, *r.state.Origin, "the saved plan was stale when the apply ran", workflow.Now(ctx))
		r.backToPeople(ctx)
	}
}

// backToPeople gives the lock back when the run waits for people again.
func (r *run) backToPeople(ctx workflow.Context) {
	r.thawed, r.replanned = false, false
	r.releaseLock(ctx)
	r.publish(ctx)
}

// lockActivity runs a lock activity and waits for its result: in lean runs
// a local activity (the lock is a file the worker writes in a few
// milliseconds; a whole activity task would cost two more workflow tasks
// and the matching round trips), else a regular one, as older runs did.
// Both are safe to repeat.
func (r *run) lockActivity(ctx workflow.Context, activity any, in activities.LockInput, out any) error {
	retry := &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5}
	if r.lean {
		lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
			StartToCloseTimeout: 30 * time.Second,
			RetryPolicy:         retry,
		})
		r.localBusy++ // the task goes on after it: see settle
		defer func() { r.localBusy-- }()
		return workflow.ExecuteLocalActivity(lctx, activity, in).Get(ctx, out)
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         retry,
	})
	return workflow.ExecuteActivity(actx, activity, in).Get(ctx, out)
}

// acquireLock asks for the workspace's apply lock.
func (r *run) acquireLock(ctx workflow.Context) (activities.LockResult, error) {
	var a *activities.Activities
	var res activities.LockResult
	err := r.lockActivity(ctx, a.AcquireApplyLock,
		activities.LockInput{Workspace: r.state.Workspace, RunID: r.state.ID}, &res)
	return res, err
}

// releaseLock gives the workspace's apply lock back if the run holds it,
// even when the run was cancelled.
func (r *run) releaseLock(ctx workflow.Context) {
	if !r.state.Locked {
		return
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	var a *activities.Activities
	err := r.lockActivity(dctx, a.ReleaseApplyLock,
		activities.LockInput{Workspace: r.state.Workspace, RunID: r.state.ID}, nil)
	if err != nil {
		workflow.GetLogger(ctx).Error("apply lock not released: the next run takes it over once this one has closed", "error", err)
	}
	r.state.Locked = false
}
