package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/plan"
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
	// EventRecorded is for the audit trail (and webhooks, which get
	// every event): the run was requested, a callback was refused.
	EventRecorded EventKind = "recorded"
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
	// Audit is what the event adds to the audit trail, oldest first: the
	// trail is one more sink of this stream, written by Notify under the
	// entries' IDs (the event's, numbered). A notice that only records
	// (the run was requested, its status changed) rides on the next one
	// sent with it.
	Audit []approval.AuditEvent `json:"audit,omitempty"`
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

// Notify is the activity that delivers an event: to the log notifier once,
// to the people of the workspace's Slack and email channels (notifyPeople's
// rules), and to its webhook, if it has one, until it succeeds or Temporal
// gives up retrying. The result tells the run what to keep: the messages
// posted, and channels that failed while the notice still went out another
// way.
//
// What an attempt delivered is kept in its heartbeat details, which Temporal
// hands to the next attempt: a retry after a failed webhook does not post the
// Slack message again, nor email anyone twice.
func (a *Activities) Notify(ctx context.Context, e Event) (NotifyResult, error) {
	p := loadProgress(ctx)
	return a.deliver(ctx, e, &p, nil)
}

// NotifyInput is a notice and what an earlier attempt of it delivered.
type NotifyInput struct {
	Event Event          `json:"event"`
	From  NotifyProgress `json:"from"`
}

// NotifyFrom is Notify for a notice whose first attempt ran as a local
// activity (NotifyLocally) and did not finish: it starts where that attempt
// stopped, then keeps its own progress in heartbeats as Notify does.
func (a *Activities) NotifyFrom(ctx context.Context, in NotifyInput) (NotifyResult, error) {
	p := in.From
	if activity.HasHeartbeatDetails(ctx) {
		p = loadProgress(ctx)
	}
	return a.deliver(ctx, in.Event, &p, nil)
}

// NotifyOutcome is what a local first attempt of a notice did: its result
// when it delivered the notice, else why not and how far it got.
type NotifyOutcome struct {
	// Result is left out when it is empty, as it mostly is: the outcome
	// stays in the run's history.
	Result NotifyResult `json:"result,omitzero"`
	// Unfinished is what the attempt delivered before it failed (nil when
	// it delivered everything), for NotifyFrom to go on from.
	Unfinished *NotifyProgress `json:"unfinished,omitempty"`
	Error      string          `json:"error,omitempty"`
	// Final: retrying cannot cure the failure (a webhook that refused the
	// notice), so nothing takes over.
	Final bool `json:"final,omitempty"`
}

// LocalNotice is a notice's local first attempt (NotifyLocally): the notice
// and the run as its workflow holds it as the notice goes out. The attempt
// runs inside a workflow task of that run, so it cannot read the run by
// query: the query would wait for the very task that waits on the attempt.
// A local activity's input is not kept in the history, so carrying the run
// costs the history nothing.
type LocalNotice struct {
	Event Event `json:"event"`
	// Run is the run, JSON-encoded by the workflow (a copy: the workflow
	// goes on changing its own while the attempt runs).
	Run json.RawMessage `json:"run,omitempty"`
	// RecordOnly: the attempt writes the audit entries and the log line
	// and leaves the workspace's channels (Slack, email, webhook) to
	// NotifyFrom, for a task someone waits on that should not wait on them.
	RecordOnly bool `json:"record_only,omitempty"`
}

// NotifyLocally is a notice's first attempt as a local activity, for a
// workflow task nobody waits on: it costs the run no activity task and no
// workflow task of its own. It answers rather than fails, with how far it
// got, because a local activity cannot keep its progress in heartbeats:
// the run hands what is left to NotifyFrom, which retries durably without
// delivering anything twice.
func (a *Activities) NotifyLocally(ctx context.Context, n LocalNotice) (NotifyOutcome, error) {
	var p NotifyProgress
	if n.RecordOnly {
		if err := a.record(ctx, n.Event, &p); err != nil {
			return NotifyOutcome{Unfinished: &p, Error: errorMessage(err)}, nil
		}
		if ws, ok := a.Config.Workspace(n.Event.Workspace); ok && ws.Notify != nil {
			return NotifyOutcome{Unfinished: &p}, nil // the channels are NotifyFrom's
		}
		return NotifyOutcome{}, nil
	}
	var run *approval.Run
	if len(n.Run) > 0 {
		run = new(approval.Run)
		if err := json.Unmarshal(n.Run, run); err != nil {
			return NotifyOutcome{Unfinished: &p, Error: "decode the run: " + err.Error()}, nil
		}
	}
	res, err := a.deliver(ctx, n.Event, &p, run)
	if err == nil {
		return NotifyOutcome{Result: res}, nil
	}
	var appErr *temporal.ApplicationError
	final := errors.As(err, &appErr) && appErr.NonRetryable()
	return NotifyOutcome{Result: res, Unfinished: &p, Error: errorMessage(err), Final: final}, nil
}

// deliver sends the notice everywhere p says it has not gone yet. run is
// the run as its workflow held it (a local attempt's), or nil: the messages
// then read it by query.
func (a *Activities) deliver(ctx context.Context, e Event, p *NotifyProgress, run *approval.Run) (NotifyResult, error) {
	if err := a.record(ctx, e, p); err != nil {
		return NotifyResult{}, err
	}
	ws, ok := a.Config.Workspace(e.Workspace)
	if !ok || ws.Notify == nil {
		return NotifyResult{}, nil
	}
	peopleErr := a.notifyPeople(ctx, ws.Notify, e, p, run)
	hookErr := a.notifyWebhook(ctx, ws.Notify, e, p)
	res := NotifyResult{Posted: p.Posted, Failures: p.Failures}
	if peopleErr != nil {
		a.Metrics.NotifyFailure("slack/email")
	}
	if hookErr != nil {
		a.Metrics.NotifyFailure("webhook")
	}
	if err := pickError(peopleErr, hookErr); err != nil {
		return res, withPrefix(fmt.Sprintf("notify %s for run %s", e.Kind, e.RunID), err)
	}
	for _, f := range res.Failures {
		// What failed for good while the notice still went out: "slack: …",
		// "email: …".
		channel, _, _ := strings.Cut(f, ":")
		a.Metrics.NotifyFailure(channel)
	}
	return res, nil
}

// record writes the notice to the audit trail and then to the log, each
// once per notice: the trail first, so it never misses what people were
// told.
func (a *Activities) record(ctx context.Context, e Event, p *NotifyProgress) error {
	if err := a.audit(ctx, e, p); err != nil {
		a.Metrics.NotifyFailure("audit")
		return withPrefix(fmt.Sprintf("audit %s for run %s", e.Kind, e.RunID), err)
	}
	// Attempts before Logged was kept logged on the first attempt only.
	if !p.Logged && activity.GetInfo(ctx).Attempt <= 1 {
		if err := a.Notifier.Notify(ctx, e); err != nil {
			return withPrefix(fmt.Sprintf("notify %s for run %s", e.Kind, e.RunID), err)
		}
		p.Logged = true
		p.save(ctx)
	}
	return nil
}

// AuditSink is where the audit trail is kept (package activities/audit's
// store). Writing an event whose ID is stored already stores nothing.
type AuditSink interface {
	Write(ctx context.Context, events ...approval.AuditEvent) error
}

// audit writes the event's entries of the audit trail, once per notice: every
// attempt tries until one succeeds, before any notifier, so the trail never
// misses what people were told. A worker without a store keeps no trail.
func (a *Activities) audit(ctx context.Context, e Event, p *NotifyProgress) error {
	if len(e.Audit) == 0 || p.Audited || a.Audit == nil {
		return nil
	}
	if err := a.Audit.Write(ctx, e.Audit...); err != nil {
		return err
	}
	a.Metrics.Audited(e.Audit)
	p.Audited = true
	p.save(ctx)
	return nil
}

// notifyWebhook posts the event to the workspace's webhook once per notice.
func (a *Activities) notifyWebhook(ctx context.Context, n *config.Notify, e Event, p *NotifyProgress) error {
	if n.Webhook == nil || p.Hooked {
		return nil
	}
	hook := Webhook{URL: n.Webhook.URL, Secret: n.Webhook.Secret, Client: a.HTTP}
	if err := hook.Notify(ctx, e); err != nil {
		return err
	}
	p.Hooked = true
	p.save(ctx)
	return nil
}

// notifyPeople delivers the notice by Slack and email. Email goes where the
// workspace asks for it always, where Slack is not set up for it, or as the
// fallback once Slack has failed for good: a refusal retrying cannot cure,
// or a minute (emailFallbackAfter) of failed attempts since the notice was
// scheduled. Until then the Slack error is returned, so Temporal retries it.
// A Slack failure that email covered is reported in the result, not as an
// error: the notice went out.
func (a *Activities) notifyPeople(ctx context.Context, n *config.Notify, e Event, p *NotifyProgress, run *approval.Run) error {
	// Slack posts on an approval request and updates what it posted; an
	// event that does neither needs no view of the run.
	slackHasWork := e.Kind == EventApprovalRequested || len(slackRefs(e.Messages)) > 0
	useSlack := n.Slack != nil && a.Config.Slack != nil && !p.SlackDone && slackHasWork
	useEmail := n.Email != nil && a.Config.Email != nil && emailed(e.Kind)
	if !useSlack && !useEmail {
		return nil
	}
	v, err := a.view(ctx, e, run)
	if err != nil {
		return err
	}
	var slackErr error
	if useSlack {
		if slackErr = a.notifySlack(ctx, n.Slack, v, p); slackErr == nil {
			p.SlackDone = true
			p.save(ctx)
		}
	}
	slackSet := n.Slack != nil && a.Config.Slack != nil
	gaveUp := slackErr != nil && a.slackGaveUp(ctx, slackErr)
	if !useEmail || !(n.Email.Mode == config.EmailAlways || !slackSet || gaveUp) {
		return slackErr
	}
	if err := a.sendEmails(ctx, v, p); err != nil {
		return pickError(slackErr, err)
	}
	if slackErr != nil {
		if !gaveUp {
			return slackErr
		}
		p.fail("slack: " + errorMessage(slackErr))
		p.SlackDone = true
		p.save(ctx)
	}
	return nil
}

// emailed reports whether notices of kind k go by email: the requests for
// approval and what repeats them. Updates of a live view have no email.
func emailed(k EventKind) bool {
	switch k {
	case EventApprovalRequested, EventReminder, EventEscalated, EventRenotify:
		return true
	}
	return false
}

// DefaultEmailFallbackAfter is how long Slack is retried before a notice
// falls back to email.
const DefaultEmailFallbackAfter = time.Minute

// slackGaveUp reports whether a Slack failure is final for this notice:
// Slack refused it for a reason retrying cannot cure, or the notice has been
// retried since it was first scheduled for longer than the fallback delay.
func (a *Activities) slackGaveUp(ctx context.Context, err error) bool {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NonRetryable() {
		return true
	}
	after := a.EmailFallbackAfter
	if after <= 0 {
		after = DefaultEmailFallbackAfter
	}
	// ScheduledTime is when the workflow scheduled the activity, the same
	// for every attempt.
	return time.Since(activity.GetInfo(ctx).ScheduledTime) >= after
}

// NotifyProgress is what the attempts of one notice have delivered so far.
// It travels between attempts as heartbeat details, which Temporal keeps
// for the next attempt (the SDK flushes the last one when an attempt
// fails), or from a local first attempt in NotifyInput.
type NotifyProgress struct {
	// Posted are the Slack messages this notice posted.
	Posted []approval.MessageRef `json:"posted,omitempty"`
	// Threads are the messages replied under ("channel/ts").
	Threads []string `json:"threads,omitempty"`
	// SlackDone: every Slack call of the notice is made.
	SlackDone bool `json:"slack_done,omitempty"`
	// Emailed are the recipients sent their email.
	Emailed []approval.UserID `json:"emailed,omitempty"`
	Hooked  bool              `json:"hooked,omitempty"`
	// Audited: the event's audit entries are stored.
	Audited bool `json:"audited,omitempty"`
	// Logged: the log notifier has the event.
	Logged bool `json:"logged,omitempty"`
	// Failures are channels that failed for good while the notice went
	// on (a DM to someone without a Slack account, Slack covered by email).
	Failures []string `json:"failures,omitempty"`
}

// maxFailures bounds the failures one notice reports.
const maxFailures = 20

func (p *NotifyProgress) fail(msg string) {
	if len(p.Failures) < maxFailures && !slices.Contains(p.Failures, msg) {
		p.Failures = append(p.Failures, msg)
	}
}

// save records the progress as the attempt's heartbeat.
func (p *NotifyProgress) save(ctx context.Context) { activity.RecordHeartbeat(ctx, *p) }

// loadProgress returns what earlier attempts of the notice delivered.
func loadProgress(ctx context.Context) NotifyProgress {
	var p NotifyProgress
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &p); err != nil {
			return NotifyProgress{}
		}
	}
	return p
}

// pickError returns the error the activity should fail with when two
// channels failed: a retryable one, so the other channel gets its retry too
// (a rate limit first, for its delay), else the first.
func pickError(errs ...error) error {
	var first, retryable error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if first == nil {
			first = err
		}
		var appErr *temporal.ApplicationError
		isApp := errors.As(err, &appErr)
		switch {
		case isApp && appErr.NextRetryDelay() > 0:
			return err
		case retryable == nil && !(isApp && appErr.NonRetryable()):
			retryable = err
		}
	}
	if retryable != nil {
		return retryable
	}
	return first
}

// withPrefix adds context to an error. The SDK reads retryability and the
// next retry's delay from the returned error itself, not from what it
// wraps, so an application error is rebuilt with the prefix rather than
// wrapped.
func withPrefix(prefix string, err error) error {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	return temporal.NewApplicationErrorWithOptions(prefix+": "+appErr.Message(), appErr.Type(), temporal.ApplicationErrorOptions{
		NonRetryable: appErr.NonRetryable(), NextRetryDelay: appErr.NextRetryDelay(), Cause: appErr.Unwrap(),
	})
}

// errorMessage is an error's own words: an application error's message
// without the SDK's decoration.
func errorMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	return err.Error()
}

// RunReader reads a run's current state, which messages render.
type RunReader interface {
	ReadRun(ctx context.Context, id string) (approval.Run, error)
}

// queryState is the run workflow's state query (workflows.QueryState, which
// this package cannot import: workflows imports activities).
const queryState = "state"

// temporalRuns reads runs by querying their workflows.
type temporalRuns struct{ c client.Client }

// ReadRun queries the run's workflow for its state.
func (t temporalRuns) ReadRun(ctx context.Context, id string) (approval.Run, error) {
	v, err := t.c.QueryWorkflow(ctx, id, "", queryState)
	if err != nil {
		return approval.Run{}, fmt.Errorf("query run %s: %w", id, err)
	}
	var r approval.Run
	if err := v.Get(&r); err != nil {
		return approval.Run{}, fmt.Errorf("decode run %s: %w", id, err)
	}
	return r, nil
}

func (a *Activities) runs() RunReader {
	if a.Runs != nil {
		return a.Runs
	}
	return temporalRuns{c: a.Temporal}
}

// maxAddresses is how many destroyed or replaced addresses a message lists
// before it says how many more there are.
const maxAddresses = 10

// view is what a message about a run says, the same by Slack and by email:
// the notice, the run as it stands now, and links to it.
type view struct {
	Event Event
	Run   approval.Run
	// Removed are the addresses the plan destroys or replaces, at most
	// maxAddresses; RemovedMore counts the rest.
	Removed     []string
	RemovedMore int
	RunURL      string
	TemporalURL string
}

// view is what the messages of a notice say: the run as known, or as read
// by query when known is nil, and its plan.
func (a *Activities) view(ctx context.Context, e Event, known *approval.Run) (view, error) {
	var run approval.Run
	if known != nil {
		run = *known
	} else {
		var err error
		if run, err = a.runs().ReadRun(ctx, e.RunID); err != nil {
			return view{}, err
		}
	}
	v := view{Event: e, Run: run}
	v.Removed, v.RemovedMore = a.removed(run.Plan.SHA256)
	v.RunURL = a.Config.RunURL(e.Workspace, e.RunID)
	if base := a.Config.TemporalUIURL; base != "" {
		v.TemporalURL = base + "/namespaces/" + url.PathEscape(a.namespace()) + "/workflows/" + url.PathEscape(e.RunID)
	}
	return v, nil
}

func (a *Activities) namespace() string {
	if a.Namespace == "" {
		return "default"
	}
	return a.Namespace
}

// removed lists the addresses the stored plan destroys or replaces. A plan
// the store cannot give is no reason to hold a notice back: the counts are
// in the run, so the list is left out and the reason logged.
func (a *Activities) removed(sha string) ([]string, int) {
	if a.Plans == nil || sha == "" {
		return nil, 0
	}
	data, err := a.Plans.Get(sha)
	if err == nil {
		var p approval.Plan
		if p, err = plan.Parse(data); err == nil {
			return removedAddresses(p.ResourceChanges)
		}
	}
	if a.Logger != nil {
		a.Logger.Warn("plan unreadable for a notice: addresses left out", zap.String("plan_sha256", sha), zap.Error(err))
	}
	return nil, 0
}

func removedAddresses(changes []approval.Resource) ([]string, int) {
	var out []string
	more := 0
	for _, r := range changes {
		if !slices.Contains(r.Actions, approval.ActionDelete) && !slices.Contains(r.Actions, approval.ActionReplace) {
			continue
		}
		if len(out) == maxAddresses {
			more++
			continue
		}
		out = append(out, r.Address)
	}
	return out, more
}

// Title names what the run needs or how it ended.
func (v view) Title() string {
	words := map[approval.Status]string{
		approval.StatusPendingApproval:  "Approval needed",
		approval.StatusAwaitingSignoff:  "Sign-off needed",
		approval.StatusChangesRequested: "Changes requested",
		approval.StatusEvaluatingPolicy: "Checking policies",
		approval.StatusPolicyFailed:     "Denied by policy",
		approval.StatusTimedOut:         "Timed out",
		approval.StatusOutcomeUnknown:   "Apply outcome unknown",
		approval.StatusNoChanges:        "No changes",
		approval.StatusPlanFailed:       "Plan failed",
	}
	w, ok := words[v.Run.Status]
	if !ok {
		w = strings.ReplaceAll(string(v.Run.Status), "_", " ")
		if w != "" {
			w = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return fmt.Sprintf("%s: %s", w, v.Event.Workspace)
}

// Waiting reports whether the run waits for approvers' decisions, when
// messages carry buttons.
func (v view) Waiting() bool {
	return v.Run.Status == approval.StatusPendingApproval || v.Run.Status == approval.StatusAwaitingSignoff
}

// Requester is who asked, and the automation that submitted for them.
func (v view) Requester() string {
	s := string(v.Run.RequestedBy.ID)
	if s == "" {
		s = string(v.Event.RequestedBy)
	}
	if v.Run.SubmittedBy != nil {
		s += " (submitted by " + string(v.Run.SubmittedBy.ID) + ")"
	}
	return s
}

// Environment is the workspace's environment, or "—".
func (v view) Environment() string {
	if v.Run.Environment == "" {
		return "—"
	}
	return v.Run.Environment
}

// PlanLine is the plan's counts the way Terraform prints them.
func (v view) PlanLine() string {
	p := v.Run.Plan
	s := fmt.Sprintf("+%d to add, ~%d to change, -%d to destroy", p.Adds, p.Changes, p.Destroys)
	if p.Replaces > 0 {
		s += fmt.Sprintf(" (%d replaced)", p.Replaces)
	}
	return s
}

// CostLine is the estimate's monthly delta, or why there is none.
func (v view) CostLine() string {
	c := v.Run.Cost
	switch {
	case c == nil:
		return "no estimate submitted"
	case c.Failed:
		return "the estimate failed: " + strings.Join(c.Problems, "; ")
	}
	return fmt.Sprintf("%+.2f %s/month (total %.2f %s/month)", c.MonthlyCostDelta, c.Currency, c.MonthlyCost, c.Currency)
}

// Denials and Warnings are what the policies said.
func (v view) Denials() []string {
	if v.Run.Policy == nil {
		return nil
	}
	return v.Run.Policy.Denials
}

func (v view) Warnings() []string {
	if v.Run.Policy != nil {
		return v.Run.Policy.Warnings
	}
	return v.Event.Warnings
}

// reasonView is one reason as messages list it.
type reasonView struct {
	Name     string
	State    approval.ReasonState
	Progress string
	Approved []approval.UserID
	Pending  []approval.UserID
	// Groups and Roles name who else may approve.
	Groups, Roles []string
	Note          string
}

// Reasons are the reasons people are asked (open or on hold) and those
// already approved, with their approvers.
func (v view) Reasons() []reasonView {
	var out []reasonView
	for _, r := range v.Run.Reasons {
		if r.State != approval.ReasonOpen && r.State != approval.ReasonOnHold && r.State != approval.ReasonApproved {
			continue
		}
		rv := reasonView{Name: r.Name, State: r.State, Progress: r.Progress(), Groups: r.Approvers.Groups, Note: r.Note}
		for _, role := range r.Approvers.Roles {
			rv.Roles = append(rv.Roles, string(role))
		}
		for _, s := range r.ApproverStates() {
			if s.State == approval.ApproverApproved {
				rv.Approved = append(rv.Approved, s.UserID)
			} else if r.State == approval.ReasonOpen {
				rv.Pending = append(rv.Pending, s.UserID)
			}
		}
		out = append(out, rv)
	}
	return out
}

// maxDecisions is how many of the latest decisions a message shows.
const maxDecisions = 10

// Decisions are the latest decisions, oldest first, and how many earlier
// ones are left out.
func (v view) Decisions() ([]approval.Decision, int) {
	var ds []approval.Decision
	for _, d := range v.Run.Decisions {
		if d.Kind != approval.DecisionRenotify {
			ds = append(ds, d)
		}
	}
	if len(ds) > maxDecisions {
		return ds[len(ds)-maxDecisions:], len(ds) - maxDecisions
	}
	return ds, 0
}

// Deadline is when the run's wait fails closed; zero when it does not wait.
func (v view) Deadline() time.Time {
	if !v.Run.Status.Waiting() {
		return time.Time{}
	}
	if !v.Run.Deadline.IsZero() {
		return v.Run.Deadline
	}
	return v.Event.Deadline
}

// decisionVerb says what a decision did, in words.
func decisionVerb(k approval.DecisionKind) string {
	switch k {
	case approval.DecisionApprove:
		return "approved"
	case approval.DecisionReject:
		return "rejected"
	case approval.DecisionCancel:
		return "cancelled"
	case approval.DecisionRevoke:
		return "revoked their approval"
	case approval.DecisionRequestChanges:
		return "requested changes"
	case approval.DecisionRevisePlan:
		return "submitted a revised plan"
	case approval.DecisionBypass:
		return "bypassed the approvals"
	case approval.DecisionEscalate:
		return "escalated"
	}
	return string(k)
}

// until says how far off t is, roughly ("in 3 hours", "2 minutes ago").
func until(t, now time.Time) string {
	d := t.Sub(now)
	past := d < 0
	if past {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		return "now"
	case d < time.Hour:
		s = plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		s = plural(int(d/time.Hour), "hour")
	default:
		s = plural(int(d/(24*time.Hour)), "day")
	}
	if past {
		return s + " ago"
	}
	return "in " + s
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
