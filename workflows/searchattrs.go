package workflows

import (
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// Search attributes the run workflow keeps current, so operators can find
// runs in the Temporal Web UI (stuck ones above all) and the gateway can list
// them. SQLite visibility allows at most three keyword lists and three
// datetimes; Gatehouse uses one and two. Keys are values, not state.
var (
	StatusKey           = temporal.NewSearchAttributeKeyKeyword("GatehouseStatus")
	WorkspaceKey        = temporal.NewSearchAttributeKeyKeyword("GatehouseWorkspace")
	EnvironmentKey      = temporal.NewSearchAttributeKeyKeyword("GatehouseEnvironment")
	RequestedByKey      = temporal.NewSearchAttributeKeyKeyword("GatehouseRequestedBy")
	PendingApproversKey = temporal.NewSearchAttributeKeyKeywordList("GatehousePendingApprovers")
	PendingSinceKey     = temporal.NewSearchAttributeKeyTime("GatehousePendingSince")
	DeadlineKey         = temporal.NewSearchAttributeKeyTime("GatehouseDeadline")
	// TicketKey holds the reference and id of the run's external approval
	// ticket (CHG0030001 and its sys_id; a Jira key), so an operator finds
	// the run from the ticket.
	TicketKey = temporal.NewSearchAttributeKeyKeywordList("GatehouseTicket")
)

// SearchAttributes lists every custom search attribute Gatehouse uses with
// its type, for registering them on a namespace.
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		StatusKey.GetName():           enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		WorkspaceKey.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		EnvironmentKey.GetName():      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		RequestedByKey.GetName():      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		PendingApproversKey.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
		PendingSinceKey.GetName():     enumspb.INDEXED_VALUE_TYPE_DATETIME,
		DeadlineKey.GetName():         enumspb.INDEXED_VALUE_TYPE_DATETIME,
		TicketKey.GetName():           enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST,
	}
}

// visibility is what the search attributes show of a run.
type visibility struct {
	status       approval.Status
	pending      string // joined, comparable
	pendingSince time.Time
	deadline     time.Time
	ticket       string // joined, comparable
}

func visibilityOf(run approval.Run) visibility {
	v := visibility{status: run.Status}
	if run.Status.Waiting() {
		var ids []string
		for _, id := range run.PendingApprovers() {
			ids = append(ids, string(id))
		}
		v.pending = strings.Join(ids, ",")
		v.pendingSince, v.deadline = run.ApprovalRequestedAt, run.Deadline
	}
	if e := run.External; e != nil && e.ID != "" {
		v.ticket = strings.Join(ticketKeys(*e), ",")
	}
	return v
}

// publish keeps the search attributes and the Web UI's current details in
// step with the run.
func (r *run) publish(ctx workflow.Context) {
	r.audit(ctx)
	workflow.SetCurrentDetails(ctx, currentDetails(r.state))
	if r.legacy {
		r.publishV0(ctx)
		return
	}
	if r.lean {
		// Upserted once the workflow task has done its work (keepVisible).
		r.stale = true
		r.changes++
		r.poke(ctx, r.upserter)
		return
	}
	r.upsert(ctx)
}

// keepVisible starts, in lean runs, the coroutine that upserts the search
// attributes once a step of the run left them stale and the workflow task
// has nothing more to do (settle): a task that changes the run several
// times writes one upsert (one history event, one visibility write) rather
// than one per change. It runs disconnected, so a cancellation in Temporal
// is still made visible.
func (r *run) keepVisible(ctx workflow.Context) {
	r.upserter = r.whenSettled(ctx, func() bool { return r.stale }, r.upsert)
}

// upsert writes the search attributes that differ from what they show.
// Runs on leanV3 write, after their first upsert, only the attributes that
// changed: an upsert merges, and the workspace, requester and environment
// never change. Temporal matches an upsert in replay by its kind alone, so
// what one writes may change without a version; whether it happens may not.
func (r *run) upsert(ctx workflow.Context) {
	r.stale = false
	v := visibilityOf(r.state)
	if v == r.published {
		return
	}
	delta := r.leanAt >= leanV3 && r.upserted
	var updates []temporal.SearchAttributeUpdate
	if !delta || v.status != r.published.status {
		updates = append(updates, StatusKey.ValueSet(string(v.status)))
	}
	if !delta {
		// The gateway starts a run with its workspace set (so it can list
		// the run before this task); lean-3 runs do not write it again.
		if at, _ := workflow.GetTypedSearchAttributes(ctx).GetKeyword(WorkspaceKey); r.leanAt < leanV3 || at != r.state.Workspace {
			updates = append(updates, WorkspaceKey.ValueSet(r.state.Workspace))
		}
		updates = append(updates, RequestedByKey.ValueSet(string(r.state.RequestedBy.ID)))
		if r.state.Environment != "" {
			updates = append(updates, EnvironmentKey.ValueSet(r.state.Environment))
		}
	}
	switch {
	case delta && v.pending == r.published.pending:
	case v.pending != "":
		updates = append(updates, PendingApproversKey.ValueSet(strings.Split(v.pending, ",")))
	default:
		updates = append(updates, PendingApproversKey.ValueUnset())
	}
	switch {
	case delta && v.pendingSince.Equal(r.published.pendingSince) && v.deadline.Equal(r.published.deadline):
	case v.pendingSince.IsZero():
		updates = append(updates, PendingSinceKey.ValueUnset(), DeadlineKey.ValueUnset())
	default:
		updates = append(updates, PendingSinceKey.ValueSet(v.pendingSince), DeadlineKey.ValueSet(v.deadline))
	}
	if v.ticket != r.published.ticket {
		// Only runs with a ticket ever write it, so older runs upsert
		// exactly what they did.
		if v.ticket != "" {
			updates = append(updates, TicketKey.ValueSet(strings.Split(v.ticket, ",")))
		} else {
			updates = append(updates, TicketKey.ValueUnset())
		}
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		workflow.GetLogger(ctx).Warn("upsert search attributes failed", "error", err)
		return
	}
	r.published, r.upserted = v, true
}

// currentDetails says in words what the run waits for, for the Temporal Web
// UI: "waiting for 1/2 approvals on destroys-need-two from group platform;
// times out 14:00 UTC".
func currentDetails(run approval.Run) string {
	deadline := ""
	if !run.Deadline.IsZero() {
		deadline = "; times out " + run.Deadline.UTC().Format("2006-01-02 15:04 UTC")
	}
	if e := run.External; e != nil && run.Status == approval.StatusPendingApproval {
		return externalDetails(*e) + deadline
	}
	switch run.Status {
	case approval.StatusPendingApproval, approval.StatusAwaitingSignoff:
		var parts []string
		for _, reason := range run.Reasons {
			if reason.State == approval.ReasonOpen {
				parts = append(parts, fmt.Sprintf("%s approvals on %s from %s", reason.Progress(), reason.Name, describe(reason)))
			}
		}
		verb := "waiting for "
		if run.Status == approval.StatusAwaitingSignoff {
			verb = "applied; waiting for sign-off: "
		}
		return verb + strings.Join(parts, "; ") + deadline
	case approval.StatusChangesRequested:
		last := lastDecision(run, approval.DecisionRequestChanges)
		return fmt.Sprintf("changes requested by %s (%q); waiting for a revised plan from %s%s", last.UserID, last.Comment, run.RequestedBy.ID, deadline)
	case approval.StatusPlanning:
		return "planning the workspace" + originDetails(run)
	case approval.StatusQueued:
		return fmt.Sprintf("approved; queued behind %s, which holds the workspace's apply lock", run.QueuedBehind)
	case approval.StatusApproved:
		if run.Frozen != nil {
			reason := ""
			if run.Frozen.Reason != "" {
				reason = " (" + run.Frozen.Reason + ")"
			}
			return fmt.Sprintf("approved; frozen until %s%s: applies when the freeze window ends", run.Frozen.Until.UTC().Format("2006-01-02 15:04 UTC"), reason)
		}
		if run.Mode == approval.ModeGate {
			return "approved: the pipeline applies plan " + short(run.Plan.SHA256)
		}
		return "approved; about to apply plan " + short(run.Plan.SHA256)
	case approval.StatusNoChanges, approval.StatusPlanFailed, approval.StatusSuperseded:
		if run.Error != "" {
			return string(run.Status) + ": " + firstLine(run.Error)
		}
	case approval.StatusApplying:
		return "applying plan " + short(run.Plan.SHA256)
	case approval.StatusTimedOut:
		return fmt.Sprintf("timed out at %s (outcome %s): nobody decided in time", run.Deadline.UTC().Format("2006-01-02 15:04 UTC"), run.Outcome)
	case approval.StatusRejected:
		last := lastDecision(run, approval.DecisionReject)
		return fmt.Sprintf("rejected by %s: %s", last.UserID, last.Comment)
	case approval.StatusCancelled:
		last := lastDecision(run, approval.DecisionCancel)
		return fmt.Sprintf("cancelled by %s: %s", last.UserID, last.Comment)
	case approval.StatusFailed:
		if run.Apply != nil {
			return "apply failed: " + run.Apply.Error
		}
	}
	return string(run.Status)
}

// describe names a reason's approvers: "group platform", "users bob, carol".
func describe(reason approval.Reason) string {
	var out []string
	add := func(kind string, names []string) {
		if len(names) == 1 {
			out = append(out, kind+" "+names[0])
		} else if len(names) > 1 {
			out = append(out, kind+"s "+strings.Join(names, ", "))
		}
	}
	str := func(ids []approval.UserID) []string {
		var s []string
		for _, id := range ids {
			s = append(s, string(id))
		}
		return s
	}
	roles := func(rs []approval.Role) []string {
		var s []string
		for _, r := range rs {
			s = append(s, string(r))
		}
		return s
	}
	add("user", str(reason.Approvers.Users))
	add("group", reason.Approvers.Groups)
	add("role", roles(reason.Approvers.Roles))
	if reason.EscalatedAt != nil {
		out = append(out, "escalated")
	}
	return strings.Join(out, " or ")
}

func lastDecision(run approval.Run, kind approval.DecisionKind) approval.Decision {
	for i := len(run.Decisions) - 1; i >= 0; i-- {
		if run.Decisions[i].Kind == kind {
			return run.Decisions[i]
		}
	}
	return approval.Decision{}
}

func short(sha string) string {
	return sha[:min(12, len(sha))]
}

// originDetails says where a planned run's code comes from.
func originDetails(run approval.Run) string {
	if run.Origin == nil || run.Origin.Ref == "" {
		return ""
	}
	return " at " + run.Origin.Ref
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// ticketKeys are the values the ticket search attribute holds: what people
// call the ticket and the system's own id (one value when they are equal).
func ticketKeys(e approval.External) []string {
	keys := []string{e.ID}
	if e.Ref != "" && e.Ref != e.ID {
		keys = append([]string{e.Ref}, keys...)
	}
	if e.TokenSHA256 != "" {
		// The webhook callback names its run only by its token.
		keys = append(keys, e.TokenSHA256)
	}
	return keys
}

// externalDetails says where an external run waits: "waiting for approval
// in ServiceNow CHG0030001 (https://…), last state approval=requested".
func externalDetails(e approval.External) string {
	if e.ID == "" {
		s := "opening the " + e.Provider.Title() + " ticket for approval"
		if e.OpenError != "" {
			s += " (" + firstLine(e.OpenError) + ")"
		}
		return s
	}
	s := "waiting for approval in " + e.Name()
	if e.Link != "" {
		s += " (" + e.Link + ")"
	}
	if e.State != "" {
		s += ", last state " + e.State
	}
	return s
}
