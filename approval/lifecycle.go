package approval

import (
	"fmt"
	"slices"
	"time"
)

// This file holds the run's life around its approval when Gatehouse plans
// it (planning, plan_failed, no_changes), when its workspace applies one run
// at a time (queued), when a newer run replaces it (superseded), and what
// happens between approval and apply (freeze windows, approvals' time to
// live, a re-plan that changed). Each step names the state it starts from.

// More decision kinds, recorded by the system or by a gateway on behalf of
// a newer run.
const (
	DecisionSupersede DecisionKind = "supersede"
	// DecisionReplan records a plan that changed before apply, and
	// DecisionExpire approvals voided by the workspace's approval_ttl.
	DecisionReplan DecisionKind = "replan"
	DecisionExpire DecisionKind = "expire"
)

// PlanReady records the plan Gatehouse made for a planning run and the
// reasons the workspace's rules and steps give it; the run then has its
// policies evaluated, or opens its first stage.
func (r *Run) PlanReady(plan PlanSummary, reasons []Reason, origin Origin, now time.Time) error {
	if err := r.checkStatus("record a plan", StatusPlanning); err != nil {
		return err
	}
	r.Plan = plan
	r.Reasons = slices.Clone(reasons)
	r.Origin = &origin
	r.Rounds[len(r.Rounds)-1].Plan = plan
	r.Rounds[len(r.Rounds)-1].Added = reasonIDs(r.Reasons)
	r.UpdatedAt = now
	if len(r.Policies) > 0 {
		r.Status = StatusEvaluatingPolicy
		return nil
	}
	r.advance(now, true)
	return nil
}

// PlanFailed ends a planning run whose plan did not complete.
func (r *Run) PlanFailed(why string, origin Origin, now time.Time) error {
	if err := r.checkStatus("record a failed plan", StatusPlanning); err != nil {
		return err
	}
	r.Origin = &origin
	r.Status = StatusPlanFailed
	r.Error = why
	r.UpdatedAt = now
	return nil
}

// NoChanges ends a run whose plan (or re-plan before apply) changes
// nothing: nobody is asked, nothing is applied.
func (r *Run) NoChanges(why string, now time.Time) error {
	if err := r.checkStatus("end with no changes", StatusPlanning, StatusApproved); err != nil {
		return err
	}
	r.closeOpenReasons()
	r.Status = StatusNoChanges
	r.Error = why
	r.UpdatedAt = now
	return nil
}

// Queue makes an approved run wait for its workspace's apply lock, which
// holder has.
func (r *Run) Queue(holder string, now time.Time) error {
	if err := r.checkStatus("queue", StatusApproved, StatusQueued); err != nil {
		return err
	}
	r.Status = StatusQueued
	r.QueuedBehind = holder
	r.UpdatedAt = now
	return nil
}

// Unqueue lets a queued run go on: it holds the lock now.
func (r *Run) Unqueue(now time.Time) error {
	if err := r.checkStatus("leave the queue", StatusQueued); err != nil {
		return err
	}
	r.Status = StatusApproved
	r.QueuedBehind = ""
	r.UpdatedAt = now
	return nil
}

// superseded are the statuses a newer run ends: waiting for approval, or
// not yet asking for it. Queued and approved runs are past approval and
// go on.
var superseded = []Status{StatusPlanning, StatusEvaluatingPolicy, StatusPendingApproval, StatusChangesRequested}

// CheckSupersede reports whether a newer run may end this one: req's
// actor is the newer run's requester, its comment names the newer run.
func (r *Run) CheckSupersede(req Request) error {
	if err := r.checkRequest(req, DecisionSupersede); err != nil {
		return err
	}
	if req.Actor.HasRole(RoleViewer) {
		return Errorf(CodeForbidden, "role: viewers may not start runs, so none of theirs supersedes another")
	}
	return r.checkStatus("be superseded", superseded...)
}

// Supersede ends a run a newer run of its workspace replaced.
func (r *Run) Supersede(req Request, now time.Time) error {
	if err := r.CheckSupersede(req); err != nil {
		return err
	}
	r.record(req, DecisionSupersede, r.OpenReasons(), now)
	r.closeOpenReasons()
	r.Status = StatusSuperseded
	return nil
}

// FreezeUntil records that the approved run waits out a freeze window.
func (r *Run) FreezeUntil(f Freeze, now time.Time) error {
	if err := r.checkStatus("wait out a freeze", StatusApproved); err != nil {
		return err
	}
	r.Frozen = &f
	r.UpdatedAt = now
	return nil
}

// Thaw ends the freeze a run waited out.
func (r *Run) Thaw(now time.Time) {
	r.Frozen = nil
	r.UpdatedAt = now
}

// ExpireApprovals voids the approvals older than ttl of the reasons that
// block the apply (bypassed ones included: a bypass is an approval in an
// emergency, not forever), reopens those reasons and makes the run wait
// again. It returns the reasons reopened; none means the run may apply.
func (r *Run) ExpireApprovals(ttl time.Duration, now time.Time) ([]string, error) {
	if err := r.checkStatus("check the approvals' age", StatusApproved); err != nil {
		return nil, err
	}
	if ttl <= 0 {
		return nil, nil
	}
	var reopened []string
	for i := range r.Reasons {
		reason := &r.Reasons[i]
		if !blocksApply(reason.Stage) || reason.State != ReasonApproved {
			continue
		}
		expired := false
		for j := range reason.Approvals {
			if a := &reason.Approvals[j]; a.RevokedAt == nil && now.Sub(a.At) > ttl {
				at := now
				a.RevokedAt, a.Expired = &at, true
				expired = true
			}
		}
		if expired && reason.Count() < reason.Required {
			reason.State = ReasonWaiting
			reopened = append(reopened, reason.ID)
		}
	}
	if len(reopened) == 0 {
		return nil, nil
	}
	r.record(Request{ID: fmt.Sprintf("expire-%d", len(r.Decisions)), Actor: Identity{ID: SystemActor},
		Comment: fmt.Sprintf("approvals older than %s expired before the apply (approval_ttl)", ttl)}, DecisionExpire, reopened, now)
	r.advance(now, true)
	return reopened, nil
}

// StaleApply takes an applying run back to approved when Terraform refused
// its saved plan as stale: nothing was applied, and the run plans again.
func (r *Run) StaleApply(now time.Time) error {
	if err := r.checkStatus("record a stale plan", StatusApplying); err != nil {
		return err
	}
	r.Status = StatusApproved
	r.UpdatedAt = now
	return nil
}

// Replanned puts the plan made again just before apply in place when it
// differs from the approved one: a new round, approvals kept only where
// nothing a reason covered changed.
func (r *Run) Replanned(plan PlanSummary, fresh []Reason, origin Origin, why string, now time.Time) error {
	if err := r.checkStatus("replace the plan", StatusApproved); err != nil {
		return err
	}
	r.Origin = &origin
	req := Request{ID: fmt.Sprintf("replan-%d", len(r.Rounds)+1), Actor: Identity{ID: SystemActor}, Comment: why}
	r.replacePlan(req, DecisionReplan, plan, r.Cost, slices.Clone(fresh), now)
	return nil
}

// FreezeBypassed reports whether an admin bypassed a freeze since the run
// was last approved.
func (r *Run) FreezeBypassed() bool {
	for i := len(r.Decisions) - 1; i >= 0; i-- {
		switch d := r.Decisions[i]; {
		case d.Kind == DecisionBypass && len(d.ReasonIDs) == 0:
			return true
		case d.Kind == DecisionApprove || d.Kind == DecisionRevisePlan || d.Kind == DecisionReplan || d.Kind == DecisionExpire:
			return false
		}
	}
	return false
}
