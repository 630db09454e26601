package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
)

// This file is the audit trail on the workflow's side. The trail is not a
// second path beside the notices: each of its entries rides on a notice of
// the run's one event stream, and the Notify activity writes it to the
// audit store under the notice's ID before any notifier sees it. Entries
// come from approval.Run.AuditSince, taken whenever the run publishes its
// state (which it does after every change), so no decision or change of
// status escapes it; the rest (reasons opened, reminders, refused
// callbacks) ride on the notices that announce them.

// ownNotice is the notice a decision's handler queues for people: the
// decision's entry rides on it rather than on a notice of its own.
var ownNotice = map[approval.AuditAction]activities.EventKind{
	approval.AuditChangesRequested: activities.EventChangesRequested,
	approval.AuditBypassed:         activities.EventBypassed,
	approval.AuditRenotified:       activities.EventRenotify,
	approval.AuditEscalated:        activities.EventEscalated,
}

// audit takes the trail since its mark and queues its entries: a decision's
// on the notice its handler queued, or on a decided notice (which live
// views such as the Slack message show); a change of status on an updated
// notice; the request on a recorded one.
func (r *run) audit(ctx workflow.Context) {
	if !r.audited {
		return
	}
	events, mark := r.state.AuditSince(r.auditMark, workflow.Now(ctx))
	r.auditMark = mark
	for i := range events {
		e := &events[i]
		kind := activities.EventUpdated
		switch {
		case e.Action == approval.AuditRequested:
			kind = activities.EventRecorded
		case e.Action.Decided():
			if n := r.queuedNotice(ownNotice[e.Action]); n != nil {
				n.Audit = append(n.Audit, *e)
				continue
			}
			kind = activities.EventDecided
		}
		r.outbox = append(r.outbox, activities.Event{Kind: kind, Actor: e.Actor.ID, Comment: e.Comment, Reasons: e.ReasonIDs,
			Audit: []approval.AuditEvent{*e}})
	}
}

// queuedNotice is the latest queued notice of the kind that carries no
// audit entry yet, or nil.
func (r *run) queuedNotice(kind activities.EventKind) *activities.Event {
	if kind == "" {
		return nil
	}
	for i := len(r.outbox) - 1; i >= 0; i-- {
		if r.outbox[i].Kind == kind && len(r.outbox[i].Audit) == 0 {
			return &r.outbox[i]
		}
	}
	return nil
}

// auditEvent is an entry of the system's for a notice that announces
// something (reasons opened, a reminder), or none when the run keeps no
// trail.
func (r *run) auditEvent(ctx workflow.Context, action approval.AuditAction, reasons []string) []approval.AuditEvent {
	if !r.audited {
		return nil
	}
	e := r.state.AuditEvent(action, workflow.Now(ctx))
	e.ReasonIDs = reasons
	return []approval.AuditEvent{e}
}

// foldRecords lets the notices of a batch that only record (the request, a
// change of status, a decision: what live views show by reading the run
// anyway) ride on the notice after them, which carries their entries
// first. Every channel still sees the run as it stands; the run sends one
// notice, not two.
func foldRecords(batch []activities.Event) []activities.Event {
	var out []activities.Event
	var carried []approval.AuditEvent
	for i, e := range batch {
		recordOnly := e.Kind == activities.EventRecorded || e.Kind == activities.EventUpdated || e.Kind == activities.EventDecided
		if recordOnly && i < len(batch)-1 {
			carried = append(carried, e.Audit...)
			continue
		}
		if len(carried) > 0 {
			e.Audit = append(carried, e.Audit...)
			carried = nil
		}
		out = append(out, e)
	}
	return out
}

// sendAudit sends, from the main loop, what the trail queued while the run
// goes on without waiting (an apply that started), so the trail has it
// before the step ends.
func (r *run) sendAudit(ctx workflow.Context) {
	if r.audited {
		r.sendNotices(ctx)
	}
}

// version names the newest behaviour the run is on, for the trail.
func (r *run) version() string {
	switch {
	case r.legacy:
		return "v0"
	case r.leanAt >= leanV4:
		return versionLean4
	case r.leanAt == leanV3:
		return versionLean3
	case r.leanAt == leanV2:
		return versionLean2
	case r.lean:
		return versionLean
	case r.audited:
		return versionAudit
	case r.noticeMu != nil:
		return versionSerialNotices
	case r.preIntegrity:
		return versionDurableTime
	}
	return versionIntegrity
}

// auditID names the k-th entry of the run's n-th notice. The number is
// zero-padded so that entries of one instant sort in the order they
// happened.
func auditID(runID string, n, k int) string {
	if k == 0 {
		return fmt.Sprintf("%s/%06d", runID, n)
	}
	return fmt.Sprintf("%s/%06d.%d", runID, n, k)
}
