package approval

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// DecisionKind is what a person did.
type DecisionKind string

// The decision kinds.
const (
	DecisionApprove        DecisionKind = "approve"
	DecisionReject         DecisionKind = "reject"
	DecisionCancel         DecisionKind = "cancel"
	DecisionRevoke         DecisionKind = "revoke"
	DecisionRequestChanges DecisionKind = "request_changes"
	DecisionRevisePlan     DecisionKind = "revise_plan"
	DecisionBypass         DecisionKind = "bypass"
	DecisionRenotify       DecisionKind = "renotify"
	// DecisionEscalate is recorded by the system when a reason escalates.
	DecisionEscalate DecisionKind = "escalate"
)

// Decision is one recorded act of a person on a run: the audit trail's unit.
// Its ID is the request's idempotency key, stable across retries.
type Decision struct {
	ID string `json:"id"`
	// Key is the digest of the idempotency key the caller sent, if any:
	// the same key may not stand for two different requests on one run.
	Key        string       `json:"key,omitempty"`
	Kind       DecisionKind `json:"decision"`
	UserID     UserID       `json:"user_id"`
	Email      string       `json:"user_email,omitempty"`
	Source     Source       `json:"source,omitempty"`
	Comment    string       `json:"comment,omitempty"`
	ReasonIDs  []string     `json:"reason_ids,omitempty"`
	PlanSHA256 string       `json:"plan_sha256,omitempty"`
	Bypassed   bool         `json:"bypassed,omitempty"`
	Channel    string       `json:"channel,omitempty"`
	At         time.Time    `json:"created_at"`
	// ResponseSeconds is the time from the earliest opening of the reasons
	// decided on (or from the request, when none) to the decision: the
	// figure for SLA reporting.
	ResponseSeconds float64 `json:"response_seconds"`
}

// Request is a person's request to act on a run.
type Request struct {
	// ID becomes the Decision's ID: the Update ID, derived by the client
	// from the caller, the action, the idempotency key and the body, so
	// a retry lands on the same decision and nothing else does.
	ID string `json:"id"`
	// Workspace is the workspace the gateway found the run in, or ""
	// (requests from before it was sent): the workflow refuses the
	// request as not found when its run is of another workspace, so a
	// gateway may decide without reading the run first.
	Workspace string `json:"workspace,omitempty"`
	// Key is the digest of the caller's idempotency key ("" when none).
	Key     string   `json:"key,omitempty"`
	Actor   Identity `json:"actor"`
	Comment string   `json:"comment,omitempty"`
	// ReasonIDs limits an approval to these reasons; empty means every open
	// reason the actor may approve.
	ReasonIDs []string `json:"reason_ids,omitempty"`
	// Channel says where the request came from ("api" today; Slack and
	// ITSM callbacks next), for the audit trail.
	Channel string `json:"channel,omitempty"`
	// IssuedAt and Signature are the gateway's proof that it
	// authenticated the actor: the run workflow counts no decision
	// without them (see package signing).
	IssuedAt  time.Time `json:"issued_at"`
	Signature string    `json:"signature,omitempty"`
}

// Limits on what people write. They keep workflow history small and are
// stated in README; longer text is a 400 naming the field.
const (
	MaxCommentBytes = 4096
	MaxMessageBytes = 4096
)

// MaxDecisions bounds the decisions one run records (approvals, revokes,
// renotifies...): the trail is workflow state, carried across
// continue-as-new, so it may not grow without limit. A run that reaches it
// takes only a reject, a cancel or a bypass; README says so.
const MaxDecisions = 200

// textFieldOf names the text field each decision takes, as the API calls it.
func textFieldOf(kind DecisionKind) string {
	switch kind {
	case DecisionCancel:
		return "message"
	case DecisionBypass:
		return "justification"
	}
	return "comment"
}

// CheckText refuses text longer than the limit, naming the field.
func CheckText(field, text string, limit int) error {
	if len(text) > limit {
		return Errorf(CodeInvalid, "%s: longer than %d bytes (%d)", field, limit, len(text))
	}
	return nil
}

// checkRequest applies what every decision needs: an actor, bounded text,
// an idempotency key that is not another request's, and room in the trail.
func (r *Run) checkRequest(req Request, kind DecisionKind) error {
	if err := checkActor(req); err != nil {
		return err
	}
	if err := CheckText(textFieldOf(kind), req.Comment, MaxCommentBytes); err != nil {
		return err
	}
	if req.Key != "" {
		for _, d := range r.Decisions {
			if d.Key == req.Key && d.ID != req.ID {
				return Errorf(CodeUnprocessable, "Idempotency-Key: already used on this run for another request (%s by %s); send a new key", d.Kind, d.UserID)
			}
		}
	}
	final := kind == DecisionReject || kind == DecisionCancel || kind == DecisionBypass
	if len(r.Decisions) >= MaxDecisions && !final {
		return Errorf(CodeConflict, "run has recorded %d decisions, the most one run keeps: it takes only reject, cancel or bypass now", MaxDecisions)
	}
	return nil
}

// SystemActor is the actor recorded for decisions no person made.
const SystemActor UserID = "system"

// checkActor refuses requests that do not name who acts.
func checkActor(req Request) error {
	if req.Actor.ID == "" {
		return Errorf(CodeInvalid, "actor: missing user id")
	}
	return nil
}

func requireText(field, text, why string) error {
	if strings.TrimSpace(text) == "" {
		return Errorf(CodeInvalid, "%s: required %s", field, why)
	}
	return nil
}

// isSelf reports whether the actor is the person the run is for, or the
// automation that submitted it: neither may approve it.
func (r *Run) isSelf(actor Identity) bool {
	return actor.ID == r.RequestedBy.ID || (r.SubmittedBy != nil && actor.ID == r.SubmittedBy.ID)
}

// canDecide reports whether the actor may decide on reason: they are named
// by it, and separation of duties does not exclude them.
func (r *Run) canDecide(actor Identity, reason Reason) (named, allowed bool) {
	if !reason.names(actor) {
		return false, false
	}
	return true, !r.isSelf(actor) || reason.AllowSelfApproval
}

// checkDecider applies the role matrix to the reasons in scope: viewers never
// decide, the requester never decides their own run unless a reason allows
// it, admins decide only where a reason names them, and nobody else does.
// Each refusal says which rule of the matrix refused.
func (r *Run) checkDecider(actor Identity, verb string, scope []Reason) error {
	if actor.HasRole(RoleViewer) {
		return Errorf(CodeForbidden, "role: viewers may not %s runs", verb)
	}
	named := false
	for _, reason := range scope {
		n, ok := r.canDecide(actor, reason)
		if ok {
			return nil
		}
		named = named || n
	}
	switch {
	case named:
		return Errorf(CodeForbidden, "self-approval: %s requested this run and may not %s it", actor.ID, verb)
	case actor.HasRole(RoleAdmin):
		return Errorf(CodeForbidden, "role: admins may cancel but not %s a run unless one of its rules lists them", verb)
	default:
		return Errorf(CodeForbidden, "eligibility: %s is not an approver of any reason of this run", actor.ID)
	}
}

// scope resolves the reasons a request names, or all reasons.
func (r *Run) scope(ids []string) ([]Reason, error) {
	if len(ids) == 0 {
		return r.Reasons, nil
	}
	var out []Reason
	for i, id := range ids {
		reason, ok := r.reason(id)
		if !ok {
			return nil, Errorf(CodeInvalid, "reason_ids[%d]: unknown reason %q", i, id)
		}
		out = append(out, *reason)
	}
	return out, nil
}

func (r *Run) checkStatus(verb string, allowed ...Status) error {
	if !slices.Contains(allowed, r.Status) {
		return Errorf(CodeConflict, "run is %s: cannot %s", r.Status, verb)
	}
	return nil
}

// approvalTargets returns the indexes of the reasons an approval counts on.
func (r *Run) approvalTargets(req Request) ([]int, error) {
	var targets []int
	if len(req.ReasonIDs) > 0 {
		for _, id := range req.ReasonIDs {
			reason, _ := r.reason(id)
			if _, ok := r.canDecide(req.Actor, *reason); !ok {
				return nil, Errorf(CodeForbidden, "eligibility: %s may not approve reason %s", req.Actor.ID, id)
			}
			switch {
			case reason.State == ReasonOpen, reason.approvedBy(req.Actor.ID):
			case reason.State == ReasonWaiting:
				return nil, Errorf(CodeConflict, "reason %s is waiting: stage %s has not opened", id, reason.Stage)
			default:
				return nil, Errorf(CodeConflict, "reason %s is %s", id, reason.State)
			}
			targets = append(targets, slices.IndexFunc(r.Reasons, func(x Reason) bool { return x.ID == id }))
		}
		return targets, nil
	}
	var waiting []string
	for i, reason := range r.Reasons {
		if _, ok := r.canDecide(req.Actor, reason); !ok {
			continue
		}
		switch reason.State {
		case ReasonOpen:
			targets = append(targets, i)
		case ReasonWaiting:
			waiting = append(waiting, fmt.Sprintf("%s (stage %s)", reason.ID, reason.Stage))
		}
	}
	if len(targets) == 0 {
		if len(waiting) > 0 {
			return nil, Errorf(CodeForbidden, "eligibility: no open reason %s may approve now; waiting: %s", req.Actor.ID, strings.Join(waiting, ", "))
		}
		return nil, Errorf(CodeForbidden, "eligibility: no open reason %s may approve", req.Actor.ID)
	}
	return targets, nil
}

// CheckApprove reports whether req may approve the run now, with the error
// the caller should see if not: invalid, then forbidden, then conflict.
func (r *Run) CheckApprove(req Request) error {
	_, err := r.checkApprove(req)
	return err
}

func (r *Run) checkApprove(req Request) ([]int, error) {
	if err := r.checkRequest(req, DecisionApprove); err != nil {
		return nil, err
	}
	if err := r.externalRefused("approve"); err != nil {
		return nil, err
	}
	scope, err := r.scope(req.ReasonIDs)
	if err != nil {
		return nil, err
	}
	if err := r.checkDecider(req.Actor, "approve", scope); err != nil {
		return nil, err
	}
	if err := r.checkStatus("approve", StatusPendingApproval, StatusAwaitingSignoff); err != nil {
		return nil, err
	}
	return r.approvalTargets(req)
}

// Approve counts the actor on the open reasons they may approve (or those
// named). A reason reaching its count is approved; when a stage is complete
// the next one opens. A repeated approval by the same person changes nothing
// and reports false.
func (r *Run) Approve(req Request, now time.Time) (bool, error) {
	targets, err := r.checkApprove(req)
	if err != nil {
		return false, err
	}
	var counted []string
	for _, i := range targets {
		reason := &r.Reasons[i]
		if reason.State != ReasonOpen || reason.approvedBy(req.Actor.ID) {
			continue
		}
		reason.Approvals = append(reason.Approvals, Approval{
			UserID: req.Actor.ID, Email: req.Actor.Email, At: now, Comment: req.Comment, DecisionID: req.ID,
			ResponseSeconds: now.Sub(reason.OpenedAt).Seconds(),
		})
		if reason.Count() >= reason.Required {
			reason.State = ReasonApproved
		}
		counted = append(counted, reason.ID)
	}
	if len(counted) == 0 {
		return false, nil
	}
	r.record(req, DecisionApprove, counted, now)
	if r.Status == StatusAwaitingSignoff {
		if r.stageApproved(StagePostApply) {
			r.Status = StatusApplied
		}
		return true, nil
	}
	r.advance(now, false)
	return true, nil
}

// CheckRevoke reports whether req may withdraw the actor's approvals now.
func (r *Run) CheckRevoke(req Request) error {
	_, err := r.checkRevoke(req)
	return err
}

func (r *Run) checkRevoke(req Request) ([]int, error) {
	if err := r.checkRequest(req, DecisionRevoke); err != nil {
		return nil, err
	}
	if err := r.externalRefused("revoke approvals of"); err != nil {
		return nil, err
	}
	if req.Actor.HasRole(RoleViewer) {
		return nil, Errorf(CodeForbidden, "role: viewers may not revoke approvals")
	}
	if err := r.checkStatus("revoke", StatusPendingApproval, StatusChangesRequested, StatusAwaitingSignoff); err != nil {
		return nil, err
	}
	var targets []int
	var satisfied []string
	for i, reason := range r.Reasons {
		if !reason.approvedBy(req.Actor.ID) {
			continue
		}
		if reason.State == ReasonOpen {
			targets = append(targets, i)
		} else {
			satisfied = append(satisfied, reason.ID)
		}
	}
	switch {
	case len(targets) > 0:
		return targets, nil
	case len(satisfied) > 0:
		return nil, Errorf(CodeConflict, "reason %s is already satisfied: its approvals can no longer be revoked", strings.Join(satisfied, ", "))
	default:
		return nil, Errorf(CodeConflict, "%s has no approval on this run to revoke", req.Actor.ID)
	}
}

// Revoke withdraws the actor's approvals on open reasons that have not yet
// reached their count. The approvals stay in the trail, marked revoked.
func (r *Run) Revoke(req Request, now time.Time) error {
	targets, err := r.checkRevoke(req)
	if err != nil {
		return err
	}
	var ids []string
	for _, i := range targets {
		reason := &r.Reasons[i]
		for j := range reason.Approvals {
			if a := &reason.Approvals[j]; a.UserID == req.Actor.ID && a.RevokedAt == nil {
				a.RevokedAt = &now
			}
		}
		ids = append(ids, reason.ID)
	}
	r.record(req, DecisionRevoke, ids, now)
	return nil
}

// CheckReject reports whether req may reject the run now.
func (r *Run) CheckReject(req Request) error {
	if err := r.checkRequest(req, DecisionReject); err != nil {
		return err
	}
	if err := r.externalRefused("reject"); err != nil {
		return err
	}
	if err := requireText("comment", req.Comment, "to reject"); err != nil {
		return err
	}
	if err := r.checkDecider(req.Actor, "reject", r.Reasons); err != nil {
		return err
	}
	return r.checkStatus("reject", StatusPendingApproval, StatusChangesRequested)
}

// Reject ends the run as rejected.
func (r *Run) Reject(req Request, now time.Time) error {
	if err := r.CheckReject(req); err != nil {
		return err
	}
	r.record(req, DecisionReject, r.OpenReasons(), now)
	r.closeOpenReasons()
	r.Status = StatusRejected
	return nil
}

// CheckCancel reports whether req may cancel the run now. The requester (or
// the automation that submitted for them), any approver a reason of the run
// names, and admins may cancel; viewers may not.
func (r *Run) CheckCancel(req Request) error {
	if err := r.checkRequest(req, DecisionCancel); err != nil {
		return err
	}
	if err := requireText("message", req.Comment, "to cancel"); err != nil {
		return err
	}
	// Naming reasons is allowed (a channel may cancel "this reason"), but
	// cancelling any reason cancels the whole run.
	if _, err := r.scope(req.ReasonIDs); err != nil {
		return err
	}
	actor := req.Actor
	if actor.HasRole(RoleViewer) {
		return Errorf(CodeForbidden, "role: viewers may not cancel runs")
	}
	if !r.mayFollowUp(actor) {
		return Errorf(CodeForbidden, "role: only the requester, an approver of this run or an admin may cancel it")
	}
	// Approved and queued runs have not applied yet: cancelling them is
	// safe (StartApply refuses a cancelled run).
	return r.checkStatus("cancel", StatusPendingApproval, StatusChangesRequested, StatusEvaluatingPolicy,
		StatusPlanning, StatusApproved, StatusQueued)
}

// Cancel ends the run as cancelled: cancelling any reason cancels them all.
func (r *Run) Cancel(req Request, now time.Time) error {
	if err := r.CheckCancel(req); err != nil {
		return err
	}
	r.record(req, DecisionCancel, r.OpenReasons(), now)
	r.closeOpenReasons()
	r.Status = StatusCancelled
	return nil
}

// CancelBySystem ends a waiting run as cancelled when no person asked for it,
// for example when an operator cancels the workflow in Temporal itself. The
// decision is recorded under SystemActor so the trail says why the run ended.
func (r *Run) CancelBySystem(message string, now time.Time) {
	if r.Status.Final() {
		return
	}
	r.record(Request{ID: "system-cancel", Actor: Identity{ID: SystemActor}, Comment: message}, DecisionCancel, r.OpenReasons(), now)
	r.closeOpenReasons()
	r.Status = StatusCancelled
}

// CheckRequestChanges reports whether req may send the plan back to its
// requester now. Only people who could approve it may.
func (r *Run) CheckRequestChanges(req Request) error {
	if err := r.checkRequest(req, DecisionRequestChanges); err != nil {
		return err
	}
	if err := r.externalRefused("request changes on"); err != nil {
		return err
	}
	if err := requireText("comment", req.Comment, "to request changes"); err != nil {
		return err
	}
	if err := r.checkDecider(req.Actor, "request changes on", r.Reasons); err != nil {
		return err
	}
	return r.checkStatus("request changes", StatusPendingApproval)
}

// RequestChanges ends the current round and waits for a revised plan. The
// deadline keeps running: a run nobody reworks still fails closed.
func (r *Run) RequestChanges(req Request, now time.Time) error {
	if err := r.CheckRequestChanges(req); err != nil {
		return err
	}
	r.record(req, DecisionRequestChanges, r.OpenReasons(), now)
	round := &r.Rounds[len(r.Rounds)-1]
	round.EndedAt, round.EndedBy, round.EndComment = &now, req.Actor.ID, req.Comment
	r.Status = StatusChangesRequested
	return nil
}

// CheckRevisePlan reports whether req may submit a revised plan now: only the
// requester (or the automation that submitted for them) may, while the run
// waits for approval or for changes.
func (r *Run) CheckRevisePlan(req Request) error {
	if err := r.checkRequest(req, DecisionRevisePlan); err != nil {
		return err
	}
	if err := r.externalRefused("take a revised plan for"); err != nil {
		return err
	}
	if !r.isSelf(req.Actor) {
		return Errorf(CodeForbidden, "role: only the requester (%s) may revise the plan", r.RequestedBy.ID)
	}
	return r.checkStatus("revise the plan", StatusPendingApproval, StatusChangesRequested)
}

// RevisePlan replaces the plan (and its cost estimate) and starts a new
// round. fresh is the result of evaluating the workspace against the new
// plan (Evaluate). Reasons whose inputs are unchanged keep their approvals;
// reasons whose inputs changed start over; reasons the new plan no longer
// needs are dropped and new ones added. The run then waits again with a fresh
// deadline, or, when the workspace has policies, waits for them to be
// evaluated again (ApplyPolicy settles the policy reasons).
func (r *Run) RevisePlan(req Request, plan PlanSummary, cost *CostSummary, fresh []Reason, now time.Time) error {
	if err := r.CheckRevisePlan(req); err != nil {
		return err
	}
	r.replacePlan(req, DecisionRevisePlan, plan, cost, fresh, now)
	return nil
}

// replacePlan puts a new plan (and its estimate) in place as a new round,
// recorded as a decision of kind by req's actor: reasons whose inputs are
// unchanged keep their approvals, the others start over, and the run waits
// again (or has its policies evaluated again first).
func (r *Run) replacePlan(req Request, kind DecisionKind, plan PlanSummary, cost *CostSummary, fresh []Reason, now time.Time) {
	round := Round{Number: len(r.Rounds) + 1, Plan: plan.Counts(), StartedAt: now}
	if prev := &r.Rounds[len(r.Rounds)-1]; prev.EndedAt == nil {
		prev.EndedAt, prev.EndedBy, prev.EndComment = &now, req.Actor.ID, req.Comment
	}
	for i := range fresh {
		f := &fresh[i]
		old, ok := r.reason(f.ID)
		switch {
		case !ok:
			round.Added = append(round.Added, f.ID)
		case sameInputs(*old, *f) || plan.SHA256 == r.Plan.SHA256:
			f.Approvals = old.Approvals
			if f.Count() >= f.Required {
				f.State = ReasonApproved
			}
			f.OpenedAt = old.OpenedAt
			round.Kept = append(round.Kept, f.ID)
		default:
			round.Reset = append(round.Reset, f.ID)
		}
	}
	for _, old := range r.Reasons {
		switch {
		case old.Kind == KindPolicy && len(r.Policies) > 0:
			// Kept aside for ApplyPolicy to compare with what the
			// policies ask of the new plan.
			old.State = ReasonWaiting
			fresh = append(fresh, old)
		case !slices.ContainsFunc(fresh, func(f Reason) bool { return f.ID == old.ID }):
			round.Dropped = append(round.Dropped, old.ID)
		}
	}
	r.Plan = plan
	r.Cost = cost
	r.Reasons = fresh
	r.Rounds = append(r.Rounds, round)
	r.record(req, kind, reasonIDs(fresh), now)
	if len(r.Policies) > 0 {
		r.Status = StatusEvaluatingPolicy
		return
	}
	r.advance(now, true)
}

// CheckBypass reports whether req may bypass approval now: only admins, only
// on workspaces that allow it, and only with a justification.
func (r *Run) CheckBypass(req Request) error {
	if err := r.checkRequest(req, DecisionBypass); err != nil {
		return err
	}
	if err := r.externalRefused("bypass"); err != nil {
		return err
	}
	if err := requireText("justification", req.Comment, "to bypass approval"); err != nil {
		return err
	}
	if !req.Actor.HasRole(RoleAdmin) {
		return Errorf(CodeForbidden, "role: only admins may bypass approval")
	}
	if !r.AllowBypass {
		return Errorf(CodeForbidden, "bypass: workspace %s does not allow bypass", r.Workspace)
	}
	if r.Status == StatusApproved && r.Frozen != nil {
		return nil // bypassing a freeze window
	}
	return r.checkStatus("bypass", StatusPendingApproval, StatusChangesRequested)
}

// Bypass approves, in an emergency, every reason that blocks the apply
// (open or waiting); sign-offs after apply still wait. The run, its decision
// and each approval it adds are marked bypassed.
func (r *Run) Bypass(req Request, now time.Time) ([]string, error) {
	if err := r.CheckBypass(req); err != nil {
		return nil, err
	}
	if r.Status == StatusApproved && r.Frozen != nil {
		// An approved run waiting out a freeze: the bypass lifts it.
		r.Frozen = nil
		r.Bypassed = true
		r.record(req, DecisionBypass, nil, now)
		r.Decisions[len(r.Decisions)-1].Bypassed = true
		return nil, nil
	}
	var ids []string
	for i := range r.Reasons {
		reason := &r.Reasons[i]
		if !blocksApply(reason.Stage) || reason.State == ReasonApproved {
			continue
		}
		reason.Approvals = append(reason.Approvals, Approval{
			UserID: req.Actor.ID, Email: req.Actor.Email, At: now, Comment: req.Comment, DecisionID: req.ID, Bypassed: true,
		})
		reason.State = ReasonApproved
		if reason.OpenedAt.IsZero() {
			reason.OpenedAt = now
		}
		ids = append(ids, reason.ID)
	}
	r.Bypassed = true
	r.record(req, DecisionBypass, ids, now)
	r.Decisions[len(r.Decisions)-1].Bypassed = true
	r.advance(now, false)
	return ids, nil
}

// BypassedApprovers lists the eligible users of the given reasons: the people
// to tell that their approval was bypassed.
func (r *Run) BypassedApprovers(ids []string) []UserID {
	var out []UserID
	for _, id := range ids {
		if reason, ok := r.reason(id); ok {
			for _, u := range reason.Eligible {
				if !slices.Contains(out, u) {
					out = append(out, u)
				}
			}
		}
	}
	return out
}

// mayFollowUp reports whether the actor is someone a run concerns beyond
// looking at it: its requester, an approver it names, or an admin.
func (r *Run) mayFollowUp(actor Identity) bool {
	named := slices.ContainsFunc(r.Reasons, func(reason Reason) bool { return reason.names(actor) })
	return r.isSelf(actor) || actor.HasRole(RoleAdmin) || named
}

// RenotifyInterval is how often approvers may be asked again on request.
const RenotifyInterval = 5 * time.Minute

// CheckRenotify reports whether req may ask the pending approvers again now.
func (r *Run) CheckRenotify(req Request, now time.Time) error {
	if err := r.checkRequest(req, DecisionRenotify); err != nil {
		return err
	}
	if err := r.externalRefused("renotify approvers of"); err != nil {
		return err
	}
	if req.Actor.HasRole(RoleViewer) {
		return Errorf(CodeForbidden, "role: viewers may not renotify approvers")
	}
	if !r.mayFollowUp(req.Actor) {
		return Errorf(CodeForbidden, "role: only the requester, an approver of this run or an admin may renotify")
	}
	if err := r.checkStatus("renotify", StatusPendingApproval, StatusAwaitingSignoff); err != nil {
		return err
	}
	if next := r.LastRenotifiedAt.Add(RenotifyInterval); !r.LastRenotifiedAt.IsZero() && now.Before(next) {
		wait := next.Sub(now).Round(time.Second)
		if wait < time.Second {
			wait = time.Second
		}
		return &Error{Code: CodeRateLimited, RetryAfter: wait,
			Message: fmt.Sprintf("renotify: approvers were asked again at %s; try again in %s", r.LastRenotifiedAt.UTC().Format(time.RFC3339), wait)}
	}
	return nil
}

// Renotify records a request to ask the pending approvers again and returns
// them.
func (r *Run) Renotify(req Request, now time.Time) ([]UserID, error) {
	if err := r.CheckRenotify(req, now); err != nil {
		return nil, err
	}
	r.LastRenotifiedAt = now
	r.record(req, DecisionRenotify, r.OpenReasons(), now)
	return r.PendingApprovers(), nil
}

func (r *Run) record(req Request, kind DecisionKind, reasonIDs []string, now time.Time) {
	var since time.Time
	for _, id := range reasonIDs {
		if reason, ok := r.reason(id); ok && !reason.OpenedAt.IsZero() && (since.IsZero() || reason.OpenedAt.Before(since)) {
			since = reason.OpenedAt
		}
	}
	if since.IsZero() {
		since = r.ApprovalRequestedAt
	}
	var response float64
	if !since.IsZero() {
		response = now.Sub(since).Seconds()
	}
	r.Decisions = append(r.Decisions, Decision{
		ResponseSeconds: response,
		ID:              req.ID,
		Key:             req.Key,
		Kind:            kind,
		UserID:          req.Actor.ID,
		Email:           req.Actor.Email,
		Source:          req.Actor.Source,
		Comment:         req.Comment,
		ReasonIDs:       reasonIDs,
		PlanSHA256:      r.Plan.SHA256,
		Channel:         req.Channel,
		At:              now,
	})
	r.UpdatedAt = now
}

// Concerns reports whether the run is the actor's business whoever may read
// its workspace: they requested or submitted it, or one of its reasons names
// them (a policy may name approvers its workspace's rules do not).
func (r *Run) Concerns(actor Identity) bool {
	return r.isSelf(actor) || slices.ContainsFunc(r.Reasons, func(reason Reason) bool { return reason.names(actor) })
}

// sameInputs reports whether a revised plan leaves what reason looked at as
// it was. A reason without a fingerprint (state from before fingerprints
// covered it) never matches: its approvals do not carry over.
func sameInputs(old, fresh Reason) bool {
	return old.Inputs != "" && old.Inputs == fresh.Inputs
}
