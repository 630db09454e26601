package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// EventKind names something people should hear about.
type EventKind string

// The event kinds.
const (
	EventApprovalRequested EventKind = "approval_requested"
	EventChangesRequested  EventKind = "changes_requested"
	EventBypassed          EventKind = "bypassed"
	EventReminder          EventKind = "reminder"
	EventEscalated         EventKind = "escalated"
	EventRenotify          EventKind = "renotify"
	EventFinished          EventKind = "finished"
	// EventDecided follows every decision, EventUpdated every other change
	// of status: channels that keep a live view of the run (the Slack
	// message) update it.
	EventDecided EventKind = "decided"
	EventUpdated EventKind = "updated"
)

// Event is one notification about a run. It carries what a message needs and
// nothing secret.
type Event struct {
	// ID is stable across retries and unique per run, so receivers can
	// drop duplicate deliveries.
	ID          string          `json:"id"`
	Kind        EventKind       `json:"kind"`
	RunID       string          `json:"run_id"`
	Workspace   string          `json:"workspace"`
	Status      approval.Status `json:"status"`
	RequestedBy approval.UserID `json:"requested_by"`
	// Recipients are the people the event is for (the approvers asked, the
	// requester asked for changes, the approvers who were bypassed).
	Recipients []approval.UserID `json:"recipients,omitempty"`
	Reasons    []string          `json:"reasons,omitempty"`
	Actor      approval.UserID   `json:"actor,omitempty"`
	Comment    string            `json:"comment,omitempty"`
	// Warnings are the policies' warnings, shown with an approval request.
	Warnings []string  `json:"warnings,omitempty"`
	Deadline time.Time `json:"deadline"`
	// Messages are the run's messages posted so far (the Slack message in
	// the workspace's channel and its DMs), which the event updates or
	// replies under instead of posting anew.
	Messages []approval.MessageRef `json:"messages,omitempty"`
}

// NotifyResult is what a notice did that the run keeps: the messages it
// posted (so later notices update them), and the channels that failed
// although the notice as a whole went out (Slack, with email as fallback).
type NotifyResult struct {
	Posted   []approval.MessageRef `json:"posted,omitempty"`
	Failures []string              `json:"failures,omitempty"`
}

// Notifier delivers events to people or systems. Implementations return an
// error when delivery failed, so Temporal can retry the activity.
type Notifier interface {
	Notify(ctx context.Context, e Event) error
}

// LogNotifier writes events as structured log lines: the notifier every
// deployment has, and the trail of what others would have been sent.
type LogNotifier struct {
	Logger *zap.Logger
}

// Notify logs the event.
func (n LogNotifier) Notify(_ context.Context, e Event) error {
	n.Logger.Info("run event",
		zap.String("id", e.ID),
		zap.String("event", string(e.Kind)),
		zap.String("run_id", e.RunID),
		zap.String("workspace", e.Workspace),
		zap.String("status", string(e.Status)),
		zap.String("requested_by", string(e.RequestedBy)),
		zap.Any("recipients", e.Recipients),
		zap.Strings("reasons", e.Reasons),
		zap.String("actor", string(e.Actor)),
		zap.String("comment", e.Comment),
		zap.Strings("warnings", e.Warnings),
		zap.Time("deadline", e.Deadline),
	)
	return nil
}

// Notify is the activity that delivers an event: to the log notifier on the
// first attempt, and to the workspace's webhook, if it has one, until it
// succeeds or Temporal gives up retrying. The result tells the run what to
// keep: messages posted, and channels that failed while the notice still
// went out another way.
func (a *Activities) Notify(ctx context.Context, e Event) (NotifyResult, error) {
	if activity.GetInfo(ctx).Attempt <= 1 {
		if err := a.Notifier.Notify(ctx, e); err != nil {
			return NotifyResult{}, fmt.Errorf("notify %s for run %s: %w", e.Kind, e.RunID, err)
		}
	}
	ws, ok := a.Config.Workspace(e.Workspace)
	if !ok || ws.Notify == nil || ws.Notify.Webhook == nil {
		return NotifyResult{}, nil
	}
	hook := Webhook{URL: ws.Notify.Webhook.URL, Secret: ws.Notify.Webhook.Secret, Client: a.HTTP}
	if err := hook.Notify(ctx, e); err != nil {
		return NotifyResult{}, fmt.Errorf("notify %s for run %s: %w", e.Kind, e.RunID, err)
	}
	return NotifyResult{}, nil
}
