package gateway

import (
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// RunView is the run object of the REST API. It is exported so clients in
// this module (the `gatehouse start` command, tests) decode the same shape
// the gateway writes.
type RunView struct {
	ID                  string                `json:"id"`
	Workspace           string                `json:"workspace"`
	Environment         string                `json:"environment,omitempty"`
	Status              approval.Status       `json:"status"`
	Outcome             approval.Outcome      `json:"outcome,omitempty"`
	RequestedBy         approval.UserID       `json:"requested_by"`
	SubmittedBy         approval.UserID       `json:"submitted_by,omitempty"`
	Bypassed            bool                  `json:"bypassed"`
	Message             string                `json:"message"`
	CreatedAt           time.Time             `json:"created_at"`
	UpdatedAt           time.Time             `json:"updated_at"`
	ApprovalRequestedAt *time.Time            `json:"approval_requested_at,omitempty"`
	Deadline            *time.Time            `json:"deadline,omitempty"`
	ConfigVersion       string                `json:"config_version,omitempty"`
	Plan                approval.PlanSummary  `json:"plan"`
	Cost                *approval.CostSummary `json:"cost,omitempty"`
	// Policy is what the workspace's policies said: shown to approvers
	// with the request.
	Policy    *approval.PolicyResult `json:"policy,omitempty"`
	Reasons   []ReasonView           `json:"reasons"`
	Decisions []DecisionView         `json:"decisions"`
	Rounds    []approval.Round       `json:"rounds"`
	// NotifyFailures lists notices that could not be delivered.
	NotifyFailures []approval.NotifyFailure `json:"notify_failures"`
	Apply          *approval.ApplyResult    `json:"apply,omitempty"`
}

// ReasonView is one approval reason with its progress and approvers.
type ReasonView struct {
	ID       string               `json:"id"`
	Name     string               `json:"name"`
	Kind     approval.ReasonKind  `json:"kind"`
	Stage    approval.Stage       `json:"stage"`
	State    approval.ReasonState `json:"state"`
	Required int                  `json:"required"`
	Approved bool                 `json:"approved"`
	Progress string               `json:"progress"`
	Note     string               `json:"note,omitempty"`
	OpenedAt *time.Time           `json:"opened_at,omitempty"`
	// Deadline is when this reason fails closed, while it is open.
	Deadline    *time.Time `json:"deadline,omitempty"`
	EscalatedAt *time.Time `json:"escalated_at,omitempty"`
	// EscalatedTo lists the fallback owners eligible since the escalation.
	EscalatedTo   *approval.Approvers `json:"escalated_to,omitempty"`
	RemindersSent int                 `json:"reminders_sent"`
	Eligible      approval.Approvers  `json:"eligible"`
	Approvers     []ApproverView      `json:"approvers"`
}

// ApproverView is one eligible person's standing on a reason.
type ApproverView struct {
	UserID   approval.UserID `json:"user_id"`
	State    string          `json:"state"`
	At       *time.Time      `json:"at,omitempty"`
	Comment  string          `json:"comment,omitempty"`
	Bypassed bool            `json:"bypassed,omitempty"`
}

// DecisionView is one entry of a run's decision trail.
type DecisionView struct {
	ID         string                `json:"id"`
	RunID      string                `json:"run_id"`
	UserID     approval.UserID       `json:"user_id"`
	UserEmail  string                `json:"user_email"`
	Source     approval.Source       `json:"source,omitempty"`
	Decision   approval.DecisionKind `json:"decision"`
	Comment    string                `json:"comment"`
	ReasonIDs  []string              `json:"reason_ids,omitempty"`
	PlanSHA256 string                `json:"plan_sha256,omitempty"`
	Bypassed   bool                  `json:"bypassed,omitempty"`
	Channel    string                `json:"channel,omitempty"`
	CreatedAt  time.Time             `json:"created_at"`
	// ResponseSeconds runs from the opening of the reasons decided to the
	// decision.
	ResponseSeconds float64 `json:"response_seconds"`
}

func newRunView(r approval.Run) RunView {
	v := RunView{
		ID: r.ID, Workspace: r.Workspace, Environment: r.Environment, Status: r.Status, Outcome: r.Outcome,
		RequestedBy: r.RequestedBy.ID, Message: r.Message, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		ApprovalRequestedAt: timePtr(r.ApprovalRequestedAt), Deadline: timePtr(r.Deadline),
		ConfigVersion: r.ConfigVersion, Plan: r.Plan, Apply: r.Apply, Bypassed: r.Bypassed, Rounds: r.Rounds,
		Cost: r.Cost, Policy: r.Policy,
		Reasons: []ReasonView{}, Decisions: []DecisionView{},
	}
	if r.SubmittedBy != nil {
		v.SubmittedBy = r.SubmittedBy.ID
	}
	if v.Rounds == nil {
		v.Rounds = []approval.Round{}
	}
	v.NotifyFailures = r.NotifyFailures
	if v.NotifyFailures == nil {
		v.NotifyFailures = []approval.NotifyFailure{}
	}
	if v.Plan.Resources == nil {
		v.Plan.Resources = []approval.Resource{}
	}
	for _, reason := range r.Reasons {
		rv := ReasonView{
			ID: reason.ID, Name: reason.Name, Kind: reason.Kind, Stage: reason.Stage, State: reason.State,
			Required: reason.Required, Approved: reason.State == approval.ReasonApproved,
			Progress: reason.Progress(), OpenedAt: timePtr(reason.OpenedAt), Eligible: reason.Approvers, Approvers: []ApproverView{},
			EscalatedAt: reason.EscalatedAt, RemindersSent: reason.RemindersSent, Note: reason.Note,
		}
		if reason.State == approval.ReasonOpen {
			rv.Deadline = timePtr(reason.Deadline)
		}
		if reason.EscalatedAt != nil {
			rv.EscalatedTo = &reason.Timing.EscalateTo
		}
		for _, a := range reason.ApproverStates() {
			rv.Approvers = append(rv.Approvers, ApproverView{UserID: a.UserID, State: a.State, At: timePtr(a.At), Comment: a.Comment, Bypassed: a.Bypassed})
		}
		v.Reasons = append(v.Reasons, rv)
	}
	for _, d := range r.Decisions {
		v.Decisions = append(v.Decisions, DecisionView{
			ID: d.ID, RunID: r.ID, UserID: d.UserID, UserEmail: d.Email, Source: d.Source,
			Decision: d.Kind, Comment: d.Comment, ReasonIDs: d.ReasonIDs, PlanSHA256: d.PlanSHA256,
			Bypassed: d.Bypassed, Channel: d.Channel, CreatedAt: d.At, ResponseSeconds: d.ResponseSeconds,
		})
	}
	return v
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
