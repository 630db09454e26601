package workflows

import (
	"encoding/json"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/signing"
)

// This file is external approval on the workflow's side: a run of a
// workspace that hands its approval to ServiceNow, Jira or a webhook opens a
// ticket when its gate opens, takes the system's decision from a signal (a
// verified callback, through the gateway) or from reading the ticket
// (reconciliation), and withdraws the ticket when it ends undecided. Only
// runs whose workspace has external approval do any of it, and no run
// started before it existed has one, so it needs no version guard.

// SignalExternal carries an external system's decision, verified by the
// gateway, to the run. It is a signal, not an Update: the ITSM that calls
// back must not wait on the workflow.
const SignalExternal = "external_decision"

// ExternalSignal is the argument of SignalExternal: the decision and the
// gateway's signature over it. The workflow counts it only when the
// signature verifies, exactly as it counts Updates.
type ExternalSignal struct {
	Decision  approval.ExternalDecision `json:"decision"`
	IssuedAt  time.Time                 `json:"issued_at"`
	Signature string                    `json:"signature,omitempty"`
}

// ExternalPayload is what the gateway signs for an external decision: the
// signal's name, the run and the argument without its signature.
func ExternalPayload(workflowID string, s ExternalSignal) ([]byte, error) {
	s.Signature = ""
	data, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", SignalExternal, err)
	}
	return append([]byte("signal\x00"+SignalExternal+"\x00"+workflowID+"\x00"), data...), nil
}

// openRetryGap is how long a run waits before it tries again to open a
// ticket the system refused (a bad field, say, fixed in the config).
const openRetryGap = 5 * time.Minute

// startExternal starts, for a run an external system approves, the two
// loops beside the main one: one takes the decisions that arrive as
// signals, one opens the ticket and reads it every poll interval.
func (r *run) startExternal(ctx workflow.Context) {
	if r.state.External == nil || r.in.Workspace.External == nil {
		return
	}
	r.signals = workflow.GetSignalChannel(ctx, SignalExternal)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			var s ExternalSignal
			r.signals.Receive(ctx, &s)
			r.externalBusy++
			r.takeSignal(ctx, s)
			r.externalBusy--
		}
	})
	workflow.Go(ctx, r.tendTicket)
}

// takeSignal counts a signalled decision when the gateway signed it and the
// run takes it; a refused one is recorded on the run and changes nothing.
func (r *run) takeSignal(ctx workflow.Context, s ExternalSignal) {
	why := r.verifySignal(ctx, s)
	if why != "" {
		r.refuseExternal(ctx, s.Decision, why)
		return
	}
	r.takeExternal(ctx, s.Decision)
}

// takeExternal feeds one external decision, from either path, to the run.
func (r *run) takeExternal(ctx workflow.Context, d approval.ExternalDecision) {
	now := workflow.Now(ctx)
	changed, err := r.state.DecideExternal(d, now)
	switch {
	case err != nil:
		r.refuseExternal(ctx, d, err.Error())
	case changed && !r.audited && r.noticeMu != nil && len(r.state.Messages) > 0:
		last := r.state.Decisions[len(r.state.Decisions)-1]
		r.outbox = append(r.outbox, activities.Event{Kind: activities.EventDecided, Actor: last.UserID, Comment: last.Comment, Reasons: last.ReasonIDs})
	}
	// The ticket's last state is in the current details too.
	r.publish(ctx)
}

// refuseExternal records an external decision the run refused, in the run
// and in the audit trail.
func (r *run) refuseExternal(ctx workflow.Context, d approval.ExternalDecision, why string) {
	r.state.RefuseExternal(d, why, workflow.Now(ctx))
	if entries := r.auditEvent(ctx, approval.AuditExternalRefused, nil); entries != nil {
		e := &entries[0]
		e.Actor = d.AuditActor()
		e.Comment = approval.TruncateUTF8(d.Comment, approval.MaxCommentBytes)
		e.Detail = approval.TruncateUTF8(d.TicketID+" "+string(d.Verdict)+": "+why, approval.MaxMessageBytes)
		r.outbox = append(r.outbox, activities.Event{Kind: activities.EventRecorded, Audit: entries})
	}
}

// verifySignal checks, once, that the gateway signed the signal recently
// for this run; the answer is recorded, so replay needs no keys. It returns
// why the signal is refused, or "".
func (r *run) verifySignal(ctx workflow.Context, s ExternalSignal) string {
	id, now := workflow.GetInfo(ctx).WorkflowExecution.ID, workflow.Now(ctx)
	check := func(workflow.Context) any {
		if r.runner.Keys == nil {
			return "refused: this worker has no signing keys to verify the decision"
		}
		//workflowcheck:ignore runs inside a side effect, whose answer is recorded and replayed
		payload, err := ExternalPayload(id, s)
		if err != nil {
			return "refused: " + err.Error()
		}
		if err := r.runner.Keys.Verify(payload, s.Signature); err != nil {
			return "refused: the decision is " + err.Error() + ": external decisions count only through the Gatehouse gateway"
		}
		if age := now.Sub(s.IssuedAt); age > signing.MaxAge || age < -signing.MaxAge {
			return "refused: the decision was signed at " + s.IssuedAt.UTC().Format(time.RFC3339) + ", too long ago"
		}
		return ""
	}
	var why string
	if err := workflow.SideEffect(ctx, check).Get(&why); err != nil {
		return "refused: " + err.Error()
	}
	return why
}

// tendTicket opens the run's ticket whenever the run waits without one,
// and, while it waits on an open ticket, reads it every poll interval so a
// lost callback costs at most one interval.
func (r *run) tendTicket(ctx workflow.Context) {
	var retryAt time.Time
	polling := func() bool {
		return r.state.Status == approval.StatusPendingApproval && r.state.External.Open() && r.pollEvery() > 0
	}
	for !r.state.Done() {
		now := workflow.Now(ctx)
		switch {
		case r.state.NeedsTicket() && now.Before(retryAt):
			_, _ = workflow.AwaitWithTimeout(ctx, retryAt.Sub(now), func() bool { return !r.state.NeedsTicket() })
		case r.state.NeedsTicket():
			if !r.openTicket(ctx) {
				retryAt = workflow.Now(ctx).Add(openRetryGap)
			}
		case polling():
			next := r.lastChecked().Add(r.pollEvery())
			fired := true
			if wait := next.Sub(now); wait > 0 {
				ok, err := workflow.AwaitWithTimeout(ctx, wait, func() bool { return !polling() })
				if err != nil {
					return
				}
				fired = !ok
			}
			if fired && polling() {
				r.pollTicket(ctx)
			}
		default:
			if err := workflow.Await(ctx, func() bool { return r.state.Done() || r.state.NeedsTicket() || polling() }); err != nil {
				return
			}
		}
	}
}

// pollEvery is the workspace's reconciliation interval; a generic webhook
// has no ticket to read.
func (r *run) pollEvery() time.Duration {
	x := r.in.Workspace.External
	if x == nil || x.Provider == approval.ProviderWebhook {
		return 0
	}
	return x.PollEvery
}

func (r *run) lastChecked() time.Time {
	e := r.state.External
	switch {
	case e.CheckedAt != nil:
		return *e.CheckedAt
	case e.OpenedAt != nil:
		return *e.OpenedAt
	}
	return time.Time{}
}

// ticketOptions retries a call to the external system: it may be down for
// a while, and the run waits until its deadline anyway.
func ticketOptions(ctx workflow.Context, until time.Time) workflow.Context {
	opts := workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute},
	}
	if wait := until.Sub(workflow.Now(ctx)); wait > time.Minute {
		opts.ScheduleToCloseTimeout = wait
	} else {
		opts.ScheduleToCloseTimeout = time.Minute
	}
	return workflow.WithActivityOptions(ctx, opts)
}

// openTicket asks the external system for the run's ticket, retrying until
// the run's deadline or until the run no longer waits; it reports whether
// the ticket is open.
func (r *run) openTicket(ctx workflow.Context) bool {
	r.externalBusy++
	defer func() { r.externalBusy-- }()
	actx, cancel := workflow.WithCancel(ticketOptions(ctx, r.state.Deadline))
	done := false
	workflow.Go(ctx, func(ctx workflow.Context) {
		_ = workflow.Await(ctx, func() bool { return done || r.state.Status != approval.StatusPendingApproval })
		cancel()
	})
	var a *activities.Activities
	var t approval.External
	err := workflow.ExecuteActivity(actx, a.OpenTicket, activities.TicketInput{RunID: r.state.ID, Workspace: r.state.Workspace}).Get(ctx, &t)
	done = true
	now := workflow.Now(ctx)
	if err != nil {
		r.state.TicketNotOpened(fmt.Sprintf("could not open the %s ticket: %s", r.state.External.Provider.Title(), rootMessage(err)), now)
		return false
	}
	if err := r.state.TicketOpened(t, now); err != nil {
		workflow.GetLogger(ctx).Warn("ticket not recorded", "error", err)
		return false
	}
	r.publish(ctx)
	return true
}

// pollTicket reads the ticket and feeds what it says through the path the
// callbacks take.
func (r *run) pollTicket(ctx workflow.Context) {
	r.externalBusy++
	defer func() { r.externalBusy-- }()
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 3},
	})
	var a *activities.Activities
	var d approval.ExternalDecision
	err := workflow.ExecuteActivity(actx, a.ReadTicket, activities.TicketInput{RunID: r.state.ID, Workspace: r.state.Workspace, Ticket: *r.state.External}).Get(ctx, &d)
	r.state.TicketChecked(workflow.Now(ctx))
	if err != nil {
		workflow.GetLogger(ctx).Warn("ticket not read", "error", err)
		return
	}
	d.Via = approval.ViaReconciliation
	r.takeExternal(ctx, d)
}

// withdrawTicket cancels, best effort, the ticket of a run that ended
// without the external system's decision (cancelled here, timed out,
// superseded), and records what happened.
func (r *run) withdrawTicket(ctx workflow.Context) {
	if r.state.External == nil {
		return
	}
	if err := workflow.Await(ctx, func() bool { return r.externalBusy == 0 }); err != nil {
		return
	}
	if !r.state.External.Open() || r.state.External.Withdrawn != nil {
		return
	}
	why := fmt.Sprintf("Gatehouse run %s ended %s", r.state.ID, r.state.Status)
	if n := len(r.state.Decisions); n > 0 && r.state.Status == approval.StatusCancelled {
		last := r.state.Decisions[n-1]
		why += fmt.Sprintf(" by %s: %s", last.UserID, last.Comment)
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 3},
	})
	var a *activities.Activities
	err := workflow.ExecuteActivity(actx, a.WithdrawTicket, activities.TicketInput{
		RunID: r.state.ID, Workspace: r.state.Workspace, Ticket: *r.state.External, Why: why,
	}).Get(ctx, nil)
	failure := ""
	if err != nil {
		failure = rootMessage(err)
	}
	r.state.TicketWithdrawn(why, failure, workflow.Now(ctx))
}

// externalQuiet reports whether no external work is in flight and no
// signal waits to be taken: the run may continue as new.
func (r *run) externalQuiet() bool {
	return r.externalBusy == 0 && (r.signals == nil || r.signals.Len() == 0)
}
