package gateway

import (
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/plan"
)

// RunView is the run object of the REST API. It is exported so clients in
// this module (the `gatehouse start` command, tests) decode the same shape
// the gateway writes.
type RunView struct {
	ID                  string                `json:"id"`
	Workspace           string                `json:"workspace"`
	Mode                approval.Mode         `json:"mode,omitempty"`
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
	Plan                PlanView              `json:"plan"`
	Cost                *approval.CostSummary `json:"cost,omitempty"`
	// Policy is what the workspace's policies said: shown to approvers
	// with the request.
	Policy    *approval.PolicyResult `json:"policy,omitempty"`
	Reasons   []ReasonView           `json:"reasons"`
	Decisions []DecisionView         `json:"decisions"`
	Rounds    []approval.Round       `json:"rounds"`
	// NotifyFailures lists notices that could not be delivered.
	NotifyFailures        []approval.NotifyFailure `json:"notify_failures"`
	NotifyFailuresDropped int                      `json:"notify_failures_dropped,omitempty"`
	Apply                 *approval.ApplyResult    `json:"apply,omitempty"`
	// Error says why the run failed before apply; Termination, who ended
	// its workflow in Temporal and why.
	Error       string                `json:"error,omitempty"`
	Termination *approval.Termination `json:"termination,omitempty"`
	// Origin says where the plan came from (ref, commit, binary plan,
	// trigger); QueuedBehind, which run holds the workspace's apply lock;
	// Frozen, the freeze window an approved run waits out.
	Origin       *approval.Origin `json:"origin,omitempty"`
	QueuedBehind string           `json:"queued_behind,omitempty"`
	Frozen       *approval.Freeze `json:"frozen,omitempty"`
	// External is the ticket an external system decides the run in: its
	// provider, reference, link, last known state and the decision.
	External *approval.External `json:"external,omitempty"`
	// Detail is set only in the 202 a create is answered with when its run
	// started but could not be read yet: it says why, and the run has only
	// its id and workspace (no status). A run read never has it.
	Detail string `json:"detail,omitempty"`
}

// PlanView is the plan's summary with the resources it changes, read from
// the plan store (the run itself keeps only the summary). Digests of values
// are not shown.
type PlanView struct {
	approval.PlanSummary
	Resources []ResourceView `json:"resources"`
}

// ResourceView is one change of the plan as the API shows it.
type ResourceView struct {
	Address         string            `json:"address"`
	PreviousAddress string            `json:"previous_address,omitempty"`
	Type            string            `json:"type"`
	Provider        string            `json:"provider,omitempty"`
	Actions         []approval.Action `json:"actions"`
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

// newRunView renders a run; changes are its plan's resource changes, nil
// where the view does not show them.
func newRunView(r approval.Run, changes []approval.Resource) RunView {
	v := RunView{
		ID: r.ID, Workspace: r.Workspace, Mode: r.Mode, Environment: r.Environment, Status: r.Status, Outcome: r.Outcome,
		RequestedBy: r.RequestedBy.ID, Message: r.Message, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		ApprovalRequestedAt: timePtr(r.ApprovalRequestedAt), Deadline: timePtr(r.Deadline),
		ConfigVersion: r.ConfigVersion, Plan: PlanView{PlanSummary: r.Plan, Resources: []ResourceView{}},
		Apply: r.Apply, Bypassed: r.Bypassed, Rounds: r.Rounds,
		Cost: r.Cost, Policy: r.Policy, Error: r.Error, Termination: r.Termination,
		Origin: r.Origin, QueuedBehind: r.QueuedBehind, Frozen: r.Frozen, External: externalView(r.External),
		NotifyFailuresDropped: r.NotifyFailuresDropped,
		Reasons:               []ReasonView{}, Decisions: []DecisionView{},
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
	for _, c := range changes {
		v.Plan.Resources = append(v.Plan.Resources, ResourceView{
			Address: c.Address, PreviousAddress: c.PreviousAddress, Type: c.Type, Provider: c.Provider, Actions: c.Actions,
		})
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

// view renders a run with its plan's resource changes from the plan store.
// A plan that cannot be read (pruned, or altered on disk) is shown without
// them and logged: the run itself is still readable.
func (s *server) view(r approval.Run) RunView {
	changes, err := s.changes(r.Plan.SHA256)
	if err != nil {
		s.Logger.Warn("plan of run not readable", zap.String("run_id", r.ID), zap.String("plan_sha256", r.Plan.SHA256), zap.Error(err))
	}
	return newRunView(r, changes)
}

// changes returns the resource changes of a stored plan, parsing it at most
// once while it stays among the last few read.
func (s *server) changes(sha string) ([]approval.Resource, error) {
	if sha == "" {
		return nil, nil
	}
	if changes, ok := s.plans.get(sha); ok {
		return changes, nil
	}
	data, err := s.Plans.Get(sha)
	if err != nil {
		return nil, err
	}
	p, err := plan.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("parse stored plan %s: %w", sha, err)
	}
	s.plans.put(sha, p.ResourceChanges)
	return p.ResourceChanges, nil
}

// planCache keeps the resource changes of the plans read last, so a page
// that polls a run does not parse a large plan on every request.
type planCache struct {
	mu    sync.Mutex
	order []string
	byKey map[string][]approval.Resource
}

const planCacheSize = 8

func (c *planCache) get(sha string) ([]approval.Resource, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	changes, ok := c.byKey[sha]
	return changes, ok
}

func (c *planCache) put(sha string, changes []approval.Resource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil {
		c.byKey = map[string][]approval.Resource{}
	}
	if _, ok := c.byKey[sha]; ok {
		return
	}
	if len(c.order) == planCacheSize {
		delete(c.byKey, c.order[0])
		c.order = c.order[1:]
	}
	c.order = append(c.order, sha)
	c.byKey[sha] = changes
}

// externalView is the run's ticket as readers see it: without the digest of
// the webhook callback token, which is nobody's business.
func externalView(e *approval.External) *approval.External {
	if e == nil {
		return nil
	}
	c := *e
	c.TokenSHA256 = ""
	return &c
}
