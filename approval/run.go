package approval

import (
	"slices"
	"time"
)

// Status is where a run is in its lifecycle.
type Status string

// The statuses. A run waits in pending_approval (or changes_requested while
// its requester reworks the plan) until every reason before apply is
// approved, applies, and then waits in awaiting_signoff if sign-offs are
// configured. It ends in one of the final statuses.
const (
	StatusPendingApproval  Status = "pending_approval"
	StatusChangesRequested Status = "changes_requested"
	StatusApproved         Status = "approved"
	StatusApplying         Status = "applying"
	StatusAwaitingSignoff  Status = "awaiting_signoff"
	StatusApplied          Status = "applied"
	StatusRejected         Status = "rejected"
	StatusCancelled        Status = "cancelled"
	StatusTimedOut         Status = "timed_out"
	StatusFailed           Status = "failed"
	// StatusEvaluatingPolicy: the workspace's policies are being checked;
	// nothing can be approved until they are.
	StatusEvaluatingPolicy Status = "evaluating_policy"
	// StatusPolicyFailed: a policy denied the plan, or could not be
	// evaluated (fail closed). Final.
	StatusPolicyFailed Status = "policy_failed"
	// StatusOutcomeUnknown: an apply started but nobody saw it end (its
	// worker died, or the run was reset or retried past a claimed apply).
	// Final: a human checks the infrastructure; Gatehouse never applies
	// again on its own.
	StatusOutcomeUnknown Status = "outcome_unknown"
	// StatusTerminated: the workflow was terminated (or timed out) in
	// Temporal itself. Never set by the workflow; read from the execution.
	StatusTerminated Status = "terminated"
	// StatusPlanning: Gatehouse runs the workspace's plan itself (init,
	// plan -out, show -json); nothing can be decided yet.
	StatusPlanning Status = "planning"
	// StatusPlanFailed: the plan did not complete. Final; the run's error
	// has the tail of its output.
	StatusPlanFailed Status = "plan_failed"
	// StatusNoChanges: the plan (or the re-plan before apply) changes
	// nothing: nobody is asked and nothing is applied. Final.
	StatusNoChanges Status = "no_changes"
	// StatusQueued: approved, waiting for the workspace's apply lock while
	// another run of the workspace applies.
	StatusQueued Status = "queued"
	// StatusSuperseded: a newer run of the workspace replaced this one
	// while it waited for approval. Final.
	StatusSuperseded Status = "superseded"
)

// Mode says what happens when a run is approved, from its workspace's
// config: Gatehouse runs Terraform/OpenTofu (plan and apply), runs the
// workspace's apply command on a submitted plan, or only gates (the
// pipeline applies with its own credentials; the run ends approved).
type Mode string

// The modes.
const (
	ModeTerraform Mode = "terraform"
	ModeCommand   Mode = "command"
	ModeGate      Mode = "gate"
)

var statuses = []Status{
	StatusPendingApproval, StatusChangesRequested, StatusApproved, StatusApplying, StatusAwaitingSignoff,
	StatusApplied, StatusRejected, StatusCancelled, StatusTimedOut, StatusFailed,
	StatusEvaluatingPolicy, StatusPolicyFailed, StatusOutcomeUnknown, StatusTerminated,
	StatusPlanning, StatusPlanFailed, StatusNoChanges, StatusQueued, StatusSuperseded,
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return slices.Contains(statuses, s) }

// Done reports whether the run can change no more: its status is final,
// or it is an approved run of a gate-only workspace (the pipeline applies).
func (r *Run) Done() bool {
	return r.Status.Final() || (r.Status == StatusApproved && r.Mode == ModeGate)
}

// Final reports whether a run in status s can change no more.
func (s Status) Final() bool {
	switch s {
	case StatusApplied, StatusRejected, StatusCancelled, StatusTimedOut, StatusFailed, StatusPolicyFailed,
		StatusOutcomeUnknown, StatusTerminated, StatusPlanFailed, StatusNoChanges, StatusSuperseded:
		return true
	}
	return false
}

// Waiting reports whether a run in status s waits for people (and so for its
// deadline).
func (s Status) Waiting() bool {
	return s == StatusPendingApproval || s == StatusChangesRequested || s == StatusAwaitingSignoff
}

// ApplyResult records what the apply step did.
type ApplyResult struct {
	Executed   bool      `json:"executed"`
	Command    []string  `json:"command,omitempty"`
	ExitCode   int       `json:"exit_code"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// The apply's output (stdout and stderr, bounded) is an artifact in
	// the content-addressed store, never in workflow history: its SHA-256,
	// its size and whether the beginning was cut. "" when nothing ran.
	LogSHA256    string `json:"log_sha256,omitempty"`
	LogBytes     int64  `json:"log_bytes,omitempty"`
	LogTruncated bool   `json:"log_truncated,omitempty"`
	// OutcomeUnknown: the apply may have run, in part or whole, but nobody
	// saw it end (its worker died, or a second attempt found the first
	// one's claim). A human must look at the infrastructure.
	OutcomeUnknown bool `json:"outcome_unknown,omitempty"`
	// StalePlan: Terraform refused the saved plan because the state
	// changed after it was planned. Nothing was applied; the run can go
	// back to approval with a new plan.
	StalePlan bool `json:"stale_plan,omitempty"`
}

// Origin is where a run's plan came from.
type Origin struct {
	// Ref is the git ref asked for; Commit the commit it resolved to.
	Ref    string `json:"ref,omitempty"`
	Commit string `json:"commit,omitempty"`
	// PlanFileSHA256 is the hash of the binary plan (plan -out) that the
	// apply runs: exactly that file, nothing else.
	PlanFileSHA256 string `json:"plan_file_sha256,omitempty"`
	// Binary is the Terraform/OpenTofu that planned, with its version.
	Binary string `json:"binary,omitempty"`
	// PlanLogSHA256 is the stored output of the plan.
	PlanLogSHA256 string `json:"plan_log_sha256,omitempty"`
	// Trigger is what started the run: "api", "hook" or "github", with
	// the delivery and who merged or pushed where a webhook says.
	Trigger    string `json:"trigger,omitempty"`
	Delivery   string `json:"delivery,omitempty"`
	Repository string `json:"repository,omitempty"`
	Actor      string `json:"actor,omitempty"`
}

// MessageRef is a message a channel posted about a run and keeps up to date:
// Slack's channel and ts (in the workspace's channel, or a DM to User).
type MessageRef struct {
	Kind    string `json:"kind"` // "slack"
	Channel string `json:"channel"`
	TS      string `json:"ts"`
	User    UserID `json:"user,omitempty"`
}

// MaxMessages bounds the messages a run keeps (a channel message and DMs to
// its approvers).
const MaxMessages = 50

// AddMessages records messages posted about the run, at most MaxMessages.
func (r *Run) AddMessages(refs []MessageRef) {
	for _, m := range refs {
		if len(r.Messages) >= MaxMessages {
			return
		}
		if !slices.Contains(r.Messages, m) {
			r.Messages = append(r.Messages, m)
		}
	}
}

// Termination is how a workflow ended outside Gatehouse.
type Termination struct {
	// By is the Temporal client identity that terminated it ("temporal"
	// when the server timed it out).
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// NotifyFailure is a notice that could not be delivered after its retries.
// It never fails the run; it is shown so someone can follow up.
type NotifyFailure struct {
	EventID string    `json:"event_id"`
	Kind    string    `json:"kind"`
	Error   string    `json:"error"`
	At      time.Time `json:"at"`
}

// Round is one plan's turn through review. A request for changes ends a
// round; the revised plan starts the next.
type Round struct {
	Number int `json:"number"`
	// Plan is the round's plan: its hash and counts.
	Plan       PlanCounts `json:"plan"`
	StartedAt  time.Time  `json:"started_at"`
	EndedAt    *time.Time `json:"ended_at,omitempty"`
	EndedBy    UserID     `json:"ended_by,omitempty"`
	EndComment string     `json:"end_comment,omitempty"`
	// How the round's reasons relate to the previous round's.
	Kept    []string `json:"kept,omitempty"`
	Reset   []string `json:"reset,omitempty"`
	Added   []string `json:"added,omitempty"`
	Dropped []string `json:"dropped,omitempty"`
}

// Run is the whole state of one plan on its way to apply.
type Run struct {
	ID        string `json:"id"`
	Workspace string `json:"workspace"`
	// Mode is what approval leads to; "" on runs from before modes, which
	// applied with a command when their workspace had one.
	Mode Mode `json:"mode,omitempty"`
	// Origin says where the plan came from: a git ref and commit, the
	// binary plan's hash, the Terraform version, and what started the run.
	Origin      *Origin  `json:"origin,omitempty"`
	Environment string   `json:"environment,omitempty"`
	RequestedBy Identity `json:"requested_by"`
	// SubmittedBy is the automation that submitted the run on behalf of
	// RequestedBy, if any.
	SubmittedBy   *Identity     `json:"submitted_by,omitempty"`
	Message       string        `json:"message,omitempty"`
	CreatedAt     time.Time     `json:"created_at"`
	ConfigVersion string        `json:"config_version,omitempty"`
	Plan          PlanSummary   `json:"plan"`
	Cost          *CostSummary  `json:"cost,omitempty"`
	Policy        *PolicyResult `json:"policy,omitempty"`
	// Policies names the policies the workspace checks its runs against.
	Policies    []string   `json:"policies,omitempty"`
	Status      Status     `json:"status"`
	Outcome     Outcome    `json:"outcome,omitempty"`
	Bypassed    bool       `json:"bypassed,omitempty"`
	Reasons     []Reason   `json:"reasons"`
	Decisions   []Decision `json:"decisions"`
	Rounds      []Round    `json:"rounds"`
	OnTimeout   Outcome    `json:"on_timeout"`
	AllowBypass bool       `json:"allow_bypass,omitempty"`
	// LastRenotifiedAt is when approvers were last asked again on request;
	// it rate-limits renotify and, being state, survives restarts.
	LastRenotifiedAt time.Time `json:"last_renotified_at"`
	// NotifyFailures lists the latest notices that could not be delivered
	// (at most MaxNotifyFailures); NotifyFailuresDropped counts older ones.
	NotifyFailures        []NotifyFailure `json:"notify_failures,omitempty"`
	NotifyFailuresDropped int             `json:"notify_failures_dropped,omitempty"`
	// Error says why a run failed before it could apply (its input was not
	// signed by the gateway, for example).
	Error string `json:"error,omitempty"`
	// QueuedBehind names the run holding the workspace's apply lock while
	// this one is queued.
	QueuedBehind string `json:"queued_behind,omitempty"`
	// Frozen is the freeze window an approved run waits out.
	Frozen *Freeze `json:"frozen,omitempty"`
	// Locked says the run holds its workspace's apply lock, which it must
	// give back whatever happens next.
	Locked bool `json:"locked,omitempty"`
	// Messages are the messages channels posted about the run and keep up
	// to date (a Slack message per run; DMs).
	Messages []MessageRef `json:"messages,omitempty"`
	// Termination says who ended the workflow in Temporal itself, and why.
	// The workflow never sets it: readers fill it in from the execution
	// (with Status terminated) when the workflow was terminated or timed
	// out before reaching a status of its own.
	Termination *Termination `json:"termination,omitempty"`
	// ApprovalRequestedAt is when the current wait began; Deadline, the
	// earliest deadline of the open reasons, is when it fails closed.
	ApprovalRequestedAt time.Time    `json:"approval_requested_at"`
	Deadline            time.Time    `json:"deadline"`
	Apply               *ApplyResult `json:"apply,omitempty"`
	// External is the ticket an external system decides the run in (nil
	// when the workspace's own approvers do).
	External  *External `json:"external,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// NewRunParams is what a run starts from.
type NewRunParams struct {
	ID          string
	Workspace   Workspace
	RequestedBy Identity
	SubmittedBy *Identity
	Message     string
	Plan        PlanSummary
	Cost        *CostSummary
	// Reasons are the workspace's rules and steps evaluated on the whole
	// plan (Evaluate), where the plan store and the directory are at hand.
	Reasons       []Reason
	ConfigVersion string
	// Planning: Gatehouse plans the run itself; Plan and Reasons come
	// with PlanReady.
	Planning bool
	Origin   *Origin
}

// NewRun returns the run with the reasons its plan needs (p.Reasons, from
// Evaluate) and its first stage open, or approved at once when nothing
// before apply needs approval.
func NewRun(p NewRunParams, now time.Time) Run {
	onTimeout := p.Workspace.OnTimeout
	if !onTimeout.Valid() {
		onTimeout = OutcomeReject
	}
	r := Run{
		Mode:          p.Workspace.Mode,
		ID:            p.ID,
		Workspace:     p.Workspace.Name,
		Environment:   p.Workspace.Environment,
		RequestedBy:   p.RequestedBy,
		SubmittedBy:   p.SubmittedBy,
		Message:       p.Message,
		CreatedAt:     now,
		ConfigVersion: p.ConfigVersion,
		Plan:          p.Plan,
		Cost:          p.Cost,
		Origin:        p.Origin,
		Policies:      p.Workspace.Policies,
		Reasons:       slices.Clone(p.Reasons),
		Decisions:     []Decision{},
		Rounds:        []Round{{Number: 1, Plan: p.Plan.Counts(), StartedAt: now}},
		OnTimeout:     onTimeout,
		AllowBypass:   p.Workspace.AllowBypass,
		UpdatedAt:     now,
	}
	r.Rounds[0].Added = reasonIDs(r.Reasons)
	if x := p.Workspace.External; x != nil {
		r.External = &External{Provider: x.Provider}
	}
	if p.Planning {
		// Gatehouse plans first (PlanReady); nothing opens before.
		r.Status = StatusPlanning
		return r
	}
	if len(p.Workspace.Policies) > 0 {
		// Policies may deny the plan or add reasons: nothing opens until
		// they have been evaluated (ApplyPolicy).
		r.Status = StatusEvaluatingPolicy
		return r
	}
	r.advance(now, true)
	return r
}

// Clone returns a deep copy, so a snapshot handed out (an Update's answer)
// does not change when the run moves on.
func (r *Run) Clone() Run {
	c := *r
	c.Reasons = slices.Clone(r.Reasons)
	for i := range c.Reasons {
		c.Reasons[i].Eligible = slices.Clone(c.Reasons[i].Eligible)
		c.Reasons[i].Approvals = slices.Clone(c.Reasons[i].Approvals)
		c.Reasons[i].EscalationEligible = slices.Clone(c.Reasons[i].EscalationEligible)
	}
	c.Decisions = slices.Clone(r.Decisions)
	c.Rounds = slices.Clone(r.Rounds)
	c.NotifyFailures = slices.Clone(r.NotifyFailures)
	if r.Policy != nil {
		p := *r.Policy
		c.Policy = &p
	}
	if r.Apply != nil {
		a := *r.Apply
		c.Apply = &a
	}
	if r.Origin != nil {
		o := *r.Origin
		c.Origin = &o
	}
	if r.Frozen != nil {
		f := *r.Frozen
		c.Frozen = &f
	}
	c.Messages = slices.Clone(r.Messages)
	return c
}

// blocksApply reports whether a stage's reasons must be approved before the
// apply.
func blocksApply(s Stage) bool { return s != StagePostApply }

// stageApproved reports whether every reason of the stage is approved.
func (r *Run) stageApproved(s Stage) bool {
	for _, reason := range r.Reasons {
		if reason.Stage == s && reason.State != ReasonApproved {
			return false
		}
	}
	return true
}

// advance opens the first stage before apply that still has unapproved
// reasons and waits for it, or marks the run approved when there is none.
// restart starts the clocks of that stage's open reasons again (a revised
// plan is a new request).
func (r *Run) advance(now time.Time, restart bool) {
	if r.External != nil {
		r.advanceExternal(now, restart)
		return
	}
	for _, st := range stageOrder {
		if !blocksApply(st) || r.stageApproved(st) {
			continue
		}
		if r.openStage(st, now, restart) {
			r.ApprovalRequestedAt = now
		}
		r.refreshDeadline()
		r.Status = StatusPendingApproval
		return
	}
	r.refreshDeadline()
	r.Status = StatusApproved
}

// openStage opens the stage's waiting reasons (and, on restart, reopens its
// open ones), starting each one's clock; it reports whether any opened.
func (r *Run) openStage(s Stage, now time.Time, restart bool) bool {
	opened := false
	for i := range r.Reasons {
		reason := &r.Reasons[i]
		if reason.Stage != s || !(reason.State == ReasonWaiting || restart && reason.State == ReasonOpen) {
			continue
		}
		reason.State = ReasonOpen
		reason.OpenedAt = now
		reason.Deadline = now.Add(reason.Timing.Timeout)
		reason.RemindersSent, reason.RemindedBefore = 0, false
		opened = true
	}
	return opened
}

// PendingApprovers lists, without repeats, the eligible users who have not yet
// approved an open reason: the people to ask and remind.
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

// OpenReasons lists the ids of the reasons that are open now.
func (r *Run) OpenReasons() []string {
	var ids []string
	for _, reason := range r.Reasons {
		if reason.State == ReasonOpen {
			ids = append(ids, reason.ID)
		}
	}
	return ids
}

// TimeOut ends a run that waited past its deadline. A run that times out
// before apply never applies; one that times out awaiting sign-off has
// applied (its apply result says so) but was never signed off.
func (r *Run) TimeOut(now time.Time) error {
	if !r.Status.Waiting() {
		return Errorf(CodeConflict, "run is %s: it no longer waits, so it cannot time out", r.Status)
	}
	r.closeOpenReasons()
	r.Status = StatusTimedOut
	r.Outcome = r.OnTimeout
	r.UpdatedAt = now
	return nil
}

// StartApply marks an approved run as applying.
func (r *Run) StartApply(now time.Time) error {
	if err := r.checkStatus("start the apply", StatusApproved); err != nil {
		return err
	}
	r.Status = StatusApplying
	r.UpdatedAt = now
	return nil
}

// FinishApply records the apply's result. A failed apply ends the run failed;
// a successful one opens the sign-offs, if any, or ends the run applied.
func (r *Run) FinishApply(res ApplyResult, now time.Time) error {
	if err := r.checkStatus("record an apply", StatusApplying); err != nil {
		return err
	}
	r.Apply = &res
	r.UpdatedAt = now
	if res.OutcomeUnknown {
		r.Status = StatusOutcomeUnknown
		r.closeOpenReasons()
		return nil
	}
	if res.Error != "" || res.ExitCode != 0 {
		r.Status = StatusFailed
		r.closeOpenReasons()
		return nil
	}
	if r.stageApproved(StagePostApply) {
		r.Status = StatusApplied
		return nil
	}
	r.openStage(StagePostApply, now, false)
	r.ApprovalRequestedAt = now
	r.refreshDeadline()
	r.Status = StatusAwaitingSignoff
	return nil
}

// Refuse ends a run that must not go on, before anything is applied: its
// input could not be verified, or a step could not be carried out. why is
// shown on the run.
func (r *Run) Refuse(why string, now time.Time) {
	if r.Status.Final() || r.Status == StatusApplying || r.Status == StatusAwaitingSignoff {
		return
	}
	r.closeOpenReasons()
	r.Status = StatusFailed
	r.Error = why
	r.UpdatedAt = now
}

// MaxNotifyFailures bounds the undelivered notices a run lists; older ones
// are counted, not kept, so a notifier that is down for weeks cannot grow
// the state.
const MaxNotifyFailures = 20

// AddNotifyFailure records a notice that could not be delivered.
func (r *Run) AddNotifyFailure(f NotifyFailure) {
	r.NotifyFailures = append(r.NotifyFailures, f)
	if over := len(r.NotifyFailures) - MaxNotifyFailures; over > 0 {
		r.NotifyFailures = slices.Delete(r.NotifyFailures, 0, over)
		r.NotifyFailuresDropped += over
	}
}

// closeOpenReasons cancels every reason not yet approved.
func (r *Run) closeOpenReasons() {
	for i := range r.Reasons {
		if s := r.Reasons[i].State; s == ReasonOpen || s == ReasonWaiting || s == ReasonOnHold {
			r.Reasons[i].State = ReasonCancelled
		}
	}
}

func (r *Run) reason(id string) (*Reason, bool) {
	for i := range r.Reasons {
		if r.Reasons[i].ID == id {
			return &r.Reasons[i], true
		}
	}
	return nil, false
}

func reasonIDs(reasons []Reason) []string {
	var ids []string
	for _, reason := range reasons {
		ids = append(ids, reason.ID)
	}
	return ids
}

// advanceExternal is advance for a run an external system approves: every
// reason waits on it at once, on hold, until it decides.
func (r *Run) advanceExternal(now time.Time, restart bool) {
	blocked := slices.ContainsFunc(stageOrder, func(st Stage) bool { return blocksApply(st) && !r.stageApproved(st) })
	if !blocked {
		r.refreshDeadline()
		r.Status = StatusApproved
		return
	}
	if restart || r.ApprovalRequestedAt.IsZero() {
		r.ApprovalRequestedAt = now
	}
	r.holdAll(now, restart)
	r.refreshDeadline()
	r.Status = StatusPendingApproval
}
