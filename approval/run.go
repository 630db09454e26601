package approval

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Status is where a run is in its lifecycle.
type Status string

// The statuses. A run starts pending_approval (or approved when no rule
// matches) and ends in one of the final ones.
const (
	StatusPendingApproval Status = "pending_approval"
	StatusApproved        Status = "approved"
	StatusApplying        Status = "applying"
	StatusApplied         Status = "applied"
	StatusRejected        Status = "rejected"
	StatusCancelled       Status = "cancelled"
	StatusTimedOut        Status = "timed_out"
	StatusFailed          Status = "failed"
)

// Statuses lists every status, for validating filters.
var statuses = []Status{
	StatusPendingApproval, StatusApproved, StatusApplying, StatusApplied,
	StatusRejected, StatusCancelled, StatusTimedOut, StatusFailed,
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return slices.Contains(statuses, s) }

// Final reports whether a run in status s can change no more.
func (s Status) Final() bool {
	switch s {
	case StatusApplied, StatusRejected, StatusCancelled, StatusTimedOut, StatusFailed:
		return true
	}
	return false
}

// ReasonState is where one approval reason stands.
type ReasonState string

// The reason states.
const (
	ReasonOpen      ReasonState = "open"
	ReasonApproved  ReasonState = "approved"
	ReasonCancelled ReasonState = "cancelled"
)

// Reason is one thing a run needs approved, with its own approvers and count.
type Reason struct {
	ID                string      `json:"id"`
	Name              string      `json:"name"`
	Kind              ReasonKind  `json:"kind"`
	Stage             Stage       `json:"stage"`
	State             ReasonState `json:"state"`
	Approvers         Approvers   `json:"approvers"`
	Eligible          []UserID    `json:"eligible,omitempty"`
	Required          int         `json:"required"`
	AllowSelfApproval bool        `json:"allow_self_approval,omitempty"`
	Approvals         []Approval  `json:"approvals"`
}

// Approval is one person's approval counted on a reason.
type Approval struct {
	UserID     UserID    `json:"user_id"`
	Email      string    `json:"email,omitempty"`
	At         time.Time `json:"at"`
	Comment    string    `json:"comment,omitempty"`
	DecisionID string    `json:"decision_id"`
}

// Progress is the reason's count as "given/required".
func (r Reason) Progress() string { return fmt.Sprintf("%d/%d", len(r.Approvals), r.Required) }

// approvedBy reports whether user already counts on the reason.
func (r Reason) approvedBy(user UserID) bool {
	return slices.ContainsFunc(r.Approvals, func(a Approval) bool { return a.UserID == user })
}

// ApproverState is one row of a reason's approver list as shown to people.
type ApproverState struct {
	UserID  UserID    `json:"user_id"`
	State   string    `json:"state"` // pending | approved
	At      time.Time `json:"at"`
	Comment string    `json:"comment,omitempty"`
}

// ApproverStates lists the eligible users as pending or approved, followed by
// anyone who approved without being in the snapshot taken when the run
// started (for example a user added to a group since).
func (r Reason) ApproverStates() []ApproverState {
	out := []ApproverState{}
	for _, id := range r.Eligible {
		st := ApproverState{UserID: id, State: "pending"}
		if i := slices.IndexFunc(r.Approvals, func(a Approval) bool { return a.UserID == id }); i >= 0 {
			st = ApproverState{UserID: id, State: "approved", At: r.Approvals[i].At, Comment: r.Approvals[i].Comment}
		}
		out = append(out, st)
	}
	for _, a := range r.Approvals {
		if !slices.Contains(r.Eligible, a.UserID) {
			out = append(out, ApproverState{UserID: a.UserID, State: "approved", At: a.At, Comment: a.Comment})
		}
	}
	return out
}

// DecisionKind is what a person decided.
type DecisionKind string

// The decision kinds.
const (
	DecisionApprove DecisionKind = "approve"
	DecisionReject  DecisionKind = "reject"
	DecisionCancel  DecisionKind = "cancel"
)

// Decision is one recorded act of a person on a run: the audit trail's unit.
// Its ID is the request's idempotency key, stable across retries.
type Decision struct {
	ID        string       `json:"id"`
	Kind      DecisionKind `json:"decision"`
	UserID    UserID       `json:"user_id"`
	Email     string       `json:"user_email,omitempty"`
	Source    Source       `json:"source,omitempty"`
	Comment   string       `json:"comment,omitempty"`
	ReasonIDs []string     `json:"reason_ids,omitempty"`
	At        time.Time    `json:"created_at"`
}

// Request is a person's request to decide on a run.
type Request struct {
	ID      string   `json:"id"` // idempotency key, becomes the Decision's ID
	Actor   Identity `json:"actor"`
	Comment string   `json:"comment,omitempty"`
}

// ApplyResult records what the apply step did.
type ApplyResult struct {
	Executed   bool      `json:"executed"`
	Command    []string  `json:"command,omitempty"`
	ExitCode   int       `json:"exit_code"`
	Output     string    `json:"output,omitempty"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
}

// Run is the whole state of one plan on its way to apply.
type Run struct {
	ID                  string       `json:"id"`
	Workspace           string       `json:"workspace"`
	Environment         string       `json:"environment,omitempty"`
	RequestedBy         Identity     `json:"requested_by"`
	Message             string       `json:"message,omitempty"`
	CreatedAt           time.Time    `json:"created_at"`
	ConfigVersion       string       `json:"config_version,omitempty"`
	Plan                PlanSummary  `json:"plan"`
	Status              Status       `json:"status"`
	Outcome             Outcome      `json:"outcome,omitempty"`
	Reasons             []Reason     `json:"reasons"`
	Decisions           []Decision   `json:"decisions"`
	ApprovalRequestedAt time.Time    `json:"approval_requested_at"`
	Deadline            time.Time    `json:"deadline"`
	Apply               *ApplyResult `json:"apply,omitempty"`
	UpdatedAt           time.Time    `json:"updated_at"`
}

// NewRunParams is what a run starts from.
type NewRunParams struct {
	ID            string
	Workspace     Workspace
	RequestedBy   Identity
	Message       string
	Plan          PlanSummary
	Directory     []Identity
	ConfigVersion string
}

// NewRun evaluates the workspace's rules against the plan and returns the run
// waiting for its reasons, or approved at once when no rule matched.
func NewRun(p NewRunParams, now time.Time) Run {
	r := Run{
		ID:            p.ID,
		Workspace:     p.Workspace.Name,
		Environment:   p.Workspace.Environment,
		RequestedBy:   p.RequestedBy,
		Message:       p.Message,
		CreatedAt:     now,
		ConfigVersion: p.ConfigVersion,
		Plan:          p.Plan,
		Reasons:       Evaluate(p.Workspace, p.Plan, p.RequestedBy, p.Directory),
		Decisions:     []Decision{},
		UpdatedAt:     now,
	}
	if len(r.Reasons) == 0 {
		r.Status = StatusApproved
		return r
	}
	timeout := p.Workspace.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	r.Status = StatusPendingApproval
	r.ApprovalRequestedAt = now
	r.Deadline = now.Add(timeout)
	return r
}

// Clone returns a deep copy, so a snapshot handed out (an Update's answer)
// does not change when the run moves on.
func (r *Run) Clone() Run {
	c := *r
	c.Plan.Resources = slices.Clone(r.Plan.Resources)
	c.Reasons = slices.Clone(r.Reasons)
	for i := range c.Reasons {
		c.Reasons[i].Eligible = slices.Clone(c.Reasons[i].Eligible)
		c.Reasons[i].Approvals = slices.Clone(c.Reasons[i].Approvals)
	}
	c.Decisions = slices.Clone(r.Decisions)
	if r.Apply != nil {
		a := *r.Apply
		c.Apply = &a
	}
	return c
}

// Satisfied reports whether every reason is approved.
func (r *Run) Satisfied() bool {
	for _, reason := range r.Reasons {
		if reason.State != ReasonApproved {
			return false
		}
	}
	return true
}

// PendingApprovers lists, without repeats, the eligible users who have not yet
// approved an open reason: the people to remind.
func (r *Run) PendingApprovers() []UserID {
	var out []UserID
	for _, reason := range r.Reasons {
		if reason.State != ReasonOpen {
			continue
		}
		for _, id := range reason.Eligible {
			if !reason.approvedBy(id) && !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	return out
}

// eligibleReasons returns the indexes of the reasons whose approvers include
// the actor and that the actor may approve given separation of duties.
func (r *Run) eligibleReasons(actor Identity) (eligible []int, selfBlocked bool) {
	for i, reason := range r.Reasons {
		if !reason.Approvers.Includes(actor) {
			continue
		}
		if actor.ID == r.RequestedBy.ID && !reason.AllowSelfApproval {
			selfBlocked = true
			continue
		}
		eligible = append(eligible, i)
	}
	return eligible, selfBlocked
}

// checkActor refuses requests that do not name who acts.
func checkActor(req Request) error {
	if req.Actor.ID == "" {
		return Errorf(CodeInvalid, "actor: missing user id")
	}
	return nil
}

// checkDecider applies the role matrix shared by approve and reject: viewers
// never decide, the requester never decides their own run (unless a rule
// allows it), and only people a rule names do.
func (r *Run) checkDecider(actor Identity, verb string) ([]int, error) {
	if actor.HasRole(RoleViewer) {
		return nil, Errorf(CodeForbidden, "role: viewers may not %s runs", verb)
	}
	eligible, selfBlocked := r.eligibleReasons(actor)
	if len(eligible) > 0 {
		return eligible, nil
	}
	switch {
	case selfBlocked:
		return nil, Errorf(CodeForbidden, "self-approval: %s requested this run and may not %s it", actor.ID, verb)
	case actor.HasRole(RoleAdmin):
		return nil, Errorf(CodeForbidden, "role: admins may cancel but not %s a run unless one of its rules lists them", verb)
	default:
		return nil, Errorf(CodeForbidden, "eligibility: %s is not an approver of any reason of this run", actor.ID)
	}
}

// checkPending refuses decisions on a run that no longer waits for them.
func (r *Run) checkPending(verb string) error {
	if r.Status != StatusPendingApproval {
		return Errorf(CodeConflict, "run is %s, not awaiting approval: cannot %s", r.Status, verb)
	}
	return nil
}

// CheckApprove reports whether req may approve the run now, with the error
// the caller should see if not.
func (r *Run) CheckApprove(req Request) error {
	if err := checkActor(req); err != nil {
		return err
	}
	if _, err := r.checkDecider(req.Actor, "approve"); err != nil {
		return err
	}
	return r.checkPending("approve")
}

// Approve counts the actor on every open reason they are eligible for. A
// repeated approval by the same person changes nothing and reports false.
func (r *Run) Approve(req Request, now time.Time) (bool, error) {
	if err := r.CheckApprove(req); err != nil {
		return false, err
	}
	eligible, _ := r.eligibleReasons(req.Actor)
	var counted []string
	for _, i := range eligible {
		reason := &r.Reasons[i]
		if reason.State != ReasonOpen || reason.approvedBy(req.Actor.ID) {
			continue
		}
		reason.Approvals = append(reason.Approvals, Approval{
			UserID: req.Actor.ID, Email: req.Actor.Email, At: now, Comment: req.Comment, DecisionID: req.ID,
		})
		if len(reason.Approvals) >= reason.Required {
			reason.State = ReasonApproved
		}
		counted = append(counted, reason.ID)
	}
	if len(counted) == 0 {
		return false, nil
	}
	r.record(req, DecisionApprove, counted, now)
	if r.Satisfied() {
		r.Status = StatusApproved
	}
	return true, nil
}

// CheckReject reports whether req may reject the run now.
func (r *Run) CheckReject(req Request) error {
	if err := checkActor(req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Comment) == "" {
		return Errorf(CodeInvalid, "comment: required to reject")
	}
	if _, err := r.checkDecider(req.Actor, "reject"); err != nil {
		return err
	}
	return r.checkPending("reject")
}

// Reject ends the run as rejected.
func (r *Run) Reject(req Request, now time.Time) error {
	if err := r.CheckReject(req); err != nil {
		return err
	}
	r.record(req, DecisionReject, r.openReasonIDs(), now)
	r.closeOpenReasons()
	r.Status = StatusRejected
	return nil
}

// CheckCancel reports whether req may cancel the run now. The requester, any
// approver a rule of the run names, and admins may cancel; viewers may not.
func (r *Run) CheckCancel(req Request) error {
	if err := checkActor(req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Comment) == "" {
		return Errorf(CodeInvalid, "message: required to cancel")
	}
	actor := req.Actor
	if actor.HasRole(RoleViewer) {
		return Errorf(CodeForbidden, "role: viewers may not cancel runs")
	}
	named := slices.ContainsFunc(r.Reasons, func(reason Reason) bool { return reason.Approvers.Includes(actor) })
	if actor.ID != r.RequestedBy.ID && !actor.HasRole(RoleAdmin) && !named {
		return Errorf(CodeForbidden, "role: only the requester, an approver of this run or an admin may cancel it")
	}
	return r.checkPending("cancel")
}

// Cancel ends the run as cancelled.
func (r *Run) Cancel(req Request, now time.Time) error {
	if err := r.CheckCancel(req); err != nil {
		return err
	}
	r.record(req, DecisionCancel, r.openReasonIDs(), now)
	r.closeOpenReasons()
	r.Status = StatusCancelled
	return nil
}

// SystemActor is the actor recorded for decisions no person made.
const SystemActor UserID = "system"

// CancelBySystem ends a waiting run as cancelled when no person asked for it,
// for example when an operator cancels the workflow in Temporal itself. The
// decision is recorded under SystemActor so the trail says why the run ended.
func (r *Run) CancelBySystem(message string, now time.Time) {
	r.record(Request{ID: "system-cancel", Actor: Identity{ID: SystemActor}, Comment: message}, DecisionCancel, r.openReasonIDs(), now)
	r.closeOpenReasons()
	r.Status = StatusCancelled
}

// TimeOut ends a run that waited past its deadline. It never applies.
func (r *Run) TimeOut(outcome Outcome, now time.Time) {
	r.closeOpenReasons()
	r.Status = StatusTimedOut
	r.Outcome = outcome
	r.UpdatedAt = now
}

// StartApply marks an approved run as applying.
func (r *Run) StartApply(now time.Time) {
	r.Status = StatusApplying
	r.UpdatedAt = now
}

// FinishApply records the apply's result: applied when it succeeded (or there
// was nothing to execute), failed otherwise.
func (r *Run) FinishApply(res ApplyResult, now time.Time) {
	r.Apply = &res
	r.Status = StatusApplied
	if res.Error != "" || res.ExitCode != 0 {
		r.Status = StatusFailed
	}
	r.UpdatedAt = now
}

func (r *Run) record(req Request, kind DecisionKind, reasonIDs []string, now time.Time) {
	r.Decisions = append(r.Decisions, Decision{
		ID:        req.ID,
		Kind:      kind,
		UserID:    req.Actor.ID,
		Email:     req.Actor.Email,
		Source:    req.Actor.Source,
		Comment:   req.Comment,
		ReasonIDs: reasonIDs,
		At:        now,
	})
	r.UpdatedAt = now
}

func (r *Run) openReasonIDs() []string {
	var ids []string
	for _, reason := range r.Reasons {
		if reason.State == ReasonOpen {
			ids = append(ids, reason.ID)
		}
	}
	return ids
}

func (r *Run) closeOpenReasons() {
	for i := range r.Reasons {
		if r.Reasons[i].State == ReasonOpen {
			r.Reasons[i].State = ReasonCancelled
		}
	}
}
