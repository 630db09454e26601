package approval

import (
	"cmp"
	"strings"
	"time"
)

// AuditAction is what an audit event records: something a person or the system
// did to a run. The audit trail, not Temporal's history, is the record of who
// approved what: it outlives the namespace's retention.
type AuditAction string

// The actions.
const (
	AuditRequested        AuditAction = "requested"
	AuditPlanned          AuditAction = "planned"
	AuditPlanFailed       AuditAction = "plan_failed"
	AuditNoChanges        AuditAction = "no_changes"
	AuditPolicyEvaluated  AuditAction = "policy_evaluated"
	AuditReasonOpened     AuditAction = "reason_opened"
	AuditApproved         AuditAction = "approved"
	AuditRejected         AuditAction = "rejected"
	AuditRevoked          AuditAction = "revoked"
	AuditChangesRequested AuditAction = "changes_requested"
	AuditPlanRevised      AuditAction = "plan_revised"
	AuditCancelled        AuditAction = "cancelled"
	AuditTimedOut         AuditAction = "timed_out"
	AuditReminded         AuditAction = "reminded"
	AuditEscalated        AuditAction = "escalated"
	AuditRenotified       AuditAction = "renotified"
	AuditBypassed         AuditAction = "bypassed"
	AuditExternalDecision AuditAction = "external_decision"
	AuditExternalRefused  AuditAction = "external_refused"
	AuditSuperseded       AuditAction = "superseded"
	AuditReplanned        AuditAction = "replanned"
	AuditApprovalsExpired AuditAction = "approvals_expired"
	AuditQueued           AuditAction = "queued"
	AuditApplyStarted     AuditAction = "apply_started"
	AuditApplied          AuditAction = "applied"
	AuditApplyFailed      AuditAction = "apply_failed"
	AuditOutcomeUnknown   AuditAction = "outcome_unknown"
	AuditRefused          AuditAction = "refused"
	AuditTerminated       AuditAction = "terminated"
	// AuditStatusChanged is a change of status no other action names.
	AuditStatusChanged AuditAction = "status_changed"
)

// AuditActions lists every action, for validating filters.
var AuditActions = []AuditAction{
	AuditRequested, AuditPlanned, AuditPlanFailed, AuditNoChanges, AuditPolicyEvaluated, AuditReasonOpened,
	AuditApproved, AuditRejected, AuditRevoked, AuditChangesRequested, AuditPlanRevised, AuditCancelled,
	AuditTimedOut, AuditReminded, AuditEscalated, AuditRenotified, AuditBypassed, AuditExternalDecision,
	AuditExternalRefused, AuditSuperseded, AuditReplanned, AuditApprovalsExpired, AuditQueued,
	AuditApplyStarted, AuditApplied, AuditApplyFailed, AuditOutcomeUnknown, AuditRefused, AuditTerminated,
	AuditStatusChanged,
}

// Channels an audited action came through.
const (
	ChannelAPI      = "api"
	ChannelUI       = "ui"
	ChannelSlack    = "slack"
	ChannelExternal = "external"
	ChannelSystem   = "system"
)

// AuditActor is who acted, as the gateway authenticated them.
type AuditActor struct {
	ID      UserID `json:"id"`
	Email   string `json:"email,omitempty"`
	Source  Source `json:"source,omitempty"`
	Channel string `json:"channel"`
}

// AuditEvent is one row of the audit trail. ID is the run's event id, the
// same across activity retries, so writing it twice stores it once.
type AuditEvent struct {
	ID          string      `json:"id"`
	At          time.Time   `json:"at"`
	Actor       AuditActor  `json:"actor"`
	Action      AuditAction `json:"action"`
	Workspace   string      `json:"workspace"`
	Environment string      `json:"environment,omitempty"`
	RunID       string      `json:"run_id"`
	ReasonIDs   []string    `json:"reason_ids,omitempty"`
	// Plan is the run's plan when the action happened: hash and counts.
	Plan            PlanSummary `json:"plan"`
	Comment         string      `json:"comment,omitempty"`
	ResponseSeconds float64     `json:"response_seconds,omitempty"`
	ConfigVersion   string      `json:"config_version,omitempty"`
	WorkflowVersion string      `json:"workflow_version,omitempty"`
	StatusBefore    Status      `json:"status_before,omitempty"`
	StatusAfter     Status      `json:"status_after"`
	// Detail says more where the action has more to say: the policies'
	// denials, the apply's error, why a callback was refused.
	Detail string `json:"detail,omitempty"`
	// RequestedBy is the run's requester, so the trail alone can list runs.
	RequestedBy UserID `json:"requested_by,omitempty"`
}

// AuditMark is how far a run's audit trail has been taken: the decisions and
// the status the last step saw. It is small and lives in workflow state.
type AuditMark struct {
	Decisions int    `json:"decisions"`
	Status    Status `json:"status"`
}

// AuditSince lists what changed in the run since mark: one event per
// decision recorded (the last one with the status it left the run in), then
// the change of status no decision explains. It returns the new mark. Every
// way a run changes goes through its decisions or its status, so no action
// slips past the trail. The events carry the run's context; their ID and
// workflow version are the workflow's to give. Callers take the trail after
// every change (the workflow does when it publishes the run's state), so a
// decision and a status change of the system's never share a step.
func (r *Run) AuditSince(m AuditMark, now time.Time) ([]AuditEvent, AuditMark) {
	var out []AuditEvent
	status := m.Status
	if m.Decisions > len(r.Decisions) {
		m.Decisions = len(r.Decisions)
	}
	if status == "" {
		// The run's first step: who asked for it.
		e := r.AuditEvent(AuditRequested, r.CreatedAt)
		e.Actor = AuditActor{ID: r.RequestedBy.ID, Email: r.RequestedBy.Email, Source: r.RequestedBy.Source, Channel: ChannelAPI}
		e.StatusBefore = ""
		e.Comment = r.Message
		var detail []string
		if r.SubmittedBy != nil {
			detail = append(detail, "submitted by "+string(r.SubmittedBy.ID))
		}
		if r.Origin != nil && r.Origin.Trigger != "" && r.Origin.Trigger != ChannelAPI {
			detail = append(detail, "triggered by "+r.Origin.Trigger+" "+r.Origin.Delivery)
		}
		if r.Status.Final() {
			detail = append(detail, r.statusDetail())
		}
		e.Detail = strings.TrimSpace(strings.Join(detail, "; "))
		out = append(out, e)
		status = r.Status
	}
	for i := m.Decisions; i < len(r.Decisions); i++ {
		d := r.Decisions[i]
		e := r.AuditEvent(DecisionAction(d), d.At)
		e.Actor, e.ReasonIDs, e.Comment, e.ResponseSeconds = decisionActor(d), d.ReasonIDs, d.Comment, d.ResponseSeconds
		e.Plan.SHA256 = cmp.Or(d.PlanSHA256, e.Plan.SHA256)
		e.StatusBefore, e.StatusAfter = status, status
		if i == len(r.Decisions)-1 {
			e.StatusAfter = r.Status
			status = r.Status
		}
		out = append(out, e)
	}
	if r.Status != status {
		e := r.AuditEvent(StatusAction(status, r.Status), now)
		e.StatusBefore, e.Detail = status, r.statusDetail()
		out = append(out, e)
	}
	return out, AuditMark{Decisions: len(r.Decisions), Status: r.Status}
}

// AuditEvent is an event of the run's trail as the system records it: the
// run's context, its status now, the system as actor.
func (r *Run) AuditEvent(action AuditAction, at time.Time) AuditEvent {
	return AuditEvent{
		At: at, Actor: AuditActor{ID: SystemActor, Channel: ChannelSystem}, Action: action,
		Workspace: r.Workspace, Environment: r.Environment, RunID: r.ID, Plan: r.Plan,
		ConfigVersion: r.ConfigVersion, StatusBefore: r.Status, StatusAfter: r.Status, RequestedBy: r.RequestedBy.ID,
	}
}

// Decided reports whether the action is a recorded decision's (made by a
// person, an external system or the system's clock), rather than a change of
// status.
func (a AuditAction) Decided() bool {
	switch a {
	case AuditApproved, AuditRejected, AuditCancelled, AuditRevoked, AuditChangesRequested, AuditPlanRevised,
		AuditBypassed, AuditRenotified, AuditEscalated, AuditSuperseded, AuditReplanned, AuditApprovalsExpired,
		AuditExternalDecision:
		return true
	}
	return false
}

// DecisionAction is the audit action of a recorded decision.
func DecisionAction(d Decision) AuditAction {
	if isExternalActor(d.UserID) && (d.Kind == DecisionApprove || d.Kind == DecisionCancel || d.Kind == DecisionReject) {
		return AuditExternalDecision
	}
	switch d.Kind {
	case DecisionApprove:
		return AuditApproved
	case DecisionReject:
		return AuditRejected
	case DecisionCancel:
		return AuditCancelled
	case DecisionRevoke:
		return AuditRevoked
	case DecisionRequestChanges:
		return AuditChangesRequested
	case DecisionRevisePlan:
		return AuditPlanRevised
	case DecisionBypass:
		return AuditBypassed
	case DecisionRenotify:
		return AuditRenotified
	case DecisionEscalate:
		return AuditEscalated
	case DecisionSupersede:
		return AuditSuperseded
	case DecisionReplan:
		return AuditReplanned
	case DecisionExpire:
		return AuditApprovalsExpired
	}
	return AuditAction(d.Kind)
}

// StatusAction names a change of status that no decision explains.
func StatusAction(before, after Status) AuditAction {
	switch {
	case before == "":
		return AuditRequested
	case before == StatusEvaluatingPolicy:
		return AuditPolicyEvaluated
	case after == StatusPlanFailed:
		return AuditPlanFailed
	case after == StatusNoChanges:
		return AuditNoChanges
	case before == StatusPlanning:
		return AuditPlanned
	case after == StatusApplying:
		return AuditApplyStarted
	case before == StatusApplying && (after == StatusApplied || after == StatusAwaitingSignoff):
		return AuditApplied
	case before == StatusApplying && after == StatusFailed:
		return AuditApplyFailed
	case after == StatusOutcomeUnknown:
		return AuditOutcomeUnknown
	case after == StatusTimedOut:
		return AuditTimedOut
	case after == StatusQueued:
		return AuditQueued
	case after == StatusTerminated:
		return AuditTerminated
	case after == StatusCancelled || after == StatusFailed:
		return AuditRefused
	}
	return AuditStatusChanged
}

// statusDetail is what the run says about its present status.
func (r *Run) statusDetail() string {
	var parts []string
	if r.Policy != nil {
		if r.Policy.Error != "" {
			parts = append(parts, r.Policy.Error)
		}
		parts = append(parts, r.Policy.Denials...)
		for _, w := range r.Policy.Warnings {
			parts = append(parts, "warning: "+w)
		}
	}
	if r.Apply != nil && r.Apply.Error != "" && (r.Status == StatusFailed || r.Status == StatusOutcomeUnknown) {
		parts = append(parts, r.Apply.Error)
	}
	if r.Error != "" && r.Status.Final() {
		parts = append(parts, r.Error)
	}
	return TruncateUTF8(strings.Join(parts, "; "), MaxMessageBytes)
}

// decisionActor is who made a decision, and through which channel.
func decisionActor(d Decision) AuditActor {
	a := AuditActor{ID: d.UserID, Email: d.Email, Source: d.Source, Channel: d.Channel}
	switch {
	case isExternalActor(d.UserID):
		a.Channel = ChannelExternal
	case d.UserID == SystemActor || a.Channel == "":
		if d.UserID == SystemActor {
			a.Channel = ChannelSystem
		} else {
			a.Channel = ChannelAPI
		}
	}
	return a
}

// isExternalActor reports whether the id is an external system's approver
// ("servicenow:…", "jira:…", "webhook:…").
func isExternalActor(id UserID) bool {
	for _, p := range []ExternalProvider{ProviderServiceNow, ProviderJira, ProviderWebhook} {
		if strings.HasPrefix(string(id), string(p)+":") {
			return true
		}
	}
	return false
}

func shortHash(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// AuditActor is who the trail names for an external decision: the system's
// approver as the run would record them.
func (d ExternalDecision) AuditActor() AuditActor {
	return AuditActor{ID: externalActor(d.Provider, TruncateUTF8(d.Actor, maxExternalActor)).ID, Channel: ChannelExternal}
}
