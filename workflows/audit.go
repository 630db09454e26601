package workflows

import (
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
				n.Audit = e
				continue
			}
			kind = activities.EventDecided
		}
		r.outbox = append(r.outbox, activities.Event{Kind: kind, Actor: e.Actor.ID, Comment: e.Comment, Reasons: e.ReasonIDs, Audit: e})
	}
}

// queuedNotice is the latest queued notice of the kind that carries no
// audit entry yet, or nil.
func (r *run) queuedNotice(kind activities.EventKind) *activities.Event {
	if kind == "" {
		return nil
	}
	for i := len(r.outbox) - 1; i >= 0; i-- {
		if r.outbox[i].Kind == kind && r.outbox[i].Audit == nil {
			return &r.outbox[i]
		}
	}
	return nil
}

// auditEvent is an entry of the system's for a notice that announces
// something (reasons opened, a reminder), or nil when the run keeps no
// trail.
func (r *run) auditEvent(ctx workflow.Context, action approval.AuditAction, reasons []string) *approval.AuditEvent {
	if !r.audited {
		return nil
	}
	e := r.state.AuditEvent(action, workflow.Now(ctx))
	e.ReasonIDs = reasons
	return &e
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
	case r.audited:
		return versionAudit
	case r.noticeMu != nil:
		return versionSerialNotices
	case r.preIntegrity:
		return versionDurableTime
	}
	return versionIntegrity
}
