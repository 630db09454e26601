package approval

import (
	"fmt"
	"slices"
	"time"
)

// ReasonState is where one approval reason stands.
type ReasonState string

// The reason states.
const (
	// ReasonWaiting: its stage has not opened yet; nobody is asked.
	ReasonWaiting ReasonState = "waiting"
	// ReasonOpen: its approvers are asked and may approve.
	ReasonOpen ReasonState = "open"
	// ReasonApproved: it has its count.
	ReasonApproved ReasonState = "approved"
	// ReasonCancelled: the run ended before it was approved.
	ReasonCancelled ReasonState = "cancelled"
	// ReasonOnHold: decided elsewhere (an external system); people here wait.
	ReasonOnHold ReasonState = "on_hold"
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
	// Inputs fingerprints the plan changes this reason looks at; a revised
	// plan with the same inputs keeps the reason's approvals.
	Inputs string `json:"inputs,omitempty"`
	// Note explains why the reason applies when that is not plain from its
	// rule, e.g. a cost condition met because no estimate was submitted.
	Note     string    `json:"note,omitempty"`
	Timing   Timing    `json:"timing"`
	OpenedAt time.Time `json:"opened_at"`
	// Deadline is OpenedAt plus the timeout, while the reason is open.
	Deadline       time.Time  `json:"deadline"`
	RemindersSent  int        `json:"reminders_sent,omitempty"`
	RemindedBefore bool       `json:"reminded_before,omitempty"`
	EscalatedAt    *time.Time `json:"escalated_at,omitempty"`
	// EscalationEligible lists the fallback owners (Timing.EscalateTo) as
	// the directory had them when the reason was made, without the
	// requester unless self-approval is allowed: whom an escalation adds
	// to Eligible and tells.
	EscalationEligible []UserID   `json:"escalation_eligible,omitempty"`
	Approvals          []Approval `json:"approvals"`
}

// names reports whether the reason names the identity as an approver: by its
// approvers, or, once escalated, by its fallback owners.
func (r Reason) names(id Identity) bool {
	return r.Approvers.Includes(id) || (r.EscalatedAt != nil && r.Timing.EscalateTo.Includes(id))
}

// Approval is one person's approval on a reason. A revoked approval stays in
// the list, marked, so the trail shows it was given and taken back.
type Approval struct {
	UserID     UserID     `json:"user_id"`
	Email      string     `json:"email,omitempty"`
	At         time.Time  `json:"at"`
	Comment    string     `json:"comment,omitempty"`
	DecisionID string     `json:"decision_id"`
	Bypassed   bool       `json:"bypassed,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	// Expired: revoked by the workspace's approval_ttl, not by the person.
	Expired bool `json:"expired,omitempty"`
	// ResponseSeconds is the time from the reason opening to this approval.
	ResponseSeconds float64 `json:"response_seconds"`
}

// Count is the number of approvals that stand (not revoked).
func (r Reason) Count() int {
	n := 0
	for _, a := range r.Approvals {
		if a.RevokedAt == nil {
			n++
		}
	}
	return n
}

// Progress is the reason's count as "given/required".
func (r Reason) Progress() string { return fmt.Sprintf("%d/%d", r.Count(), r.Required) }

// approvedBy reports whether user has an approval on the reason that stands.
func (r Reason) approvedBy(user UserID) bool {
	return slices.ContainsFunc(r.Approvals, func(a Approval) bool { return a.UserID == user && a.RevokedAt == nil })
}

// Approver states as shown per person.
const (
	ApproverPending  = "pending"
	ApproverApproved = "approved"
	ApproverRevoked  = "revoked"
)

// ApproverState is one row of a reason's approver list as shown to people.
type ApproverState struct {
	UserID   UserID    `json:"user_id"`
	State    string    `json:"state"` // pending | approved | revoked
	At       time.Time `json:"at"`
	Comment  string    `json:"comment,omitempty"`
	Bypassed bool      `json:"bypassed,omitempty"`
}

// ApproverStates lists the eligible users as pending, approved or revoked
// (their latest act counts), followed by anyone else who acted, for example a
// user added to a group after the run started.
func (r Reason) ApproverStates() []ApproverState {
	latest := func(id UserID) (Approval, bool) {
		for i := len(r.Approvals) - 1; i >= 0; i-- {
			if r.Approvals[i].UserID == id {
				return r.Approvals[i], true
			}
		}
		return Approval{}, false
	}
	row := func(id UserID) ApproverState {
		a, ok := latest(id)
		switch {
		case !ok:
			return ApproverState{UserID: id, State: ApproverPending}
		case a.RevokedAt != nil:
			return ApproverState{UserID: id, State: ApproverRevoked, At: *a.RevokedAt, Comment: a.Comment}
		default:
			return ApproverState{UserID: id, State: ApproverApproved, At: a.At, Comment: a.Comment, Bypassed: a.Bypassed}
		}
	}
	out := []ApproverState{}
	seen := map[UserID]bool{}
	for _, id := range r.Eligible {
		out = append(out, row(id))
		seen[id] = true
	}
	for _, a := range r.Approvals {
		if !seen[a.UserID] {
			out = append(out, row(a.UserID))
			seen[a.UserID] = true
		}
	}
	return out
}
