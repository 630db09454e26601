package workflows_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/worker"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// timedInput waits 4h with hourly reminders, one 30m before the deadline,
// and escalation to erin after 2h.
func timedInput() draft {
	in := input(destroysNeedTwo)
	in.Directory = append(in.Directory, erin)
	in.Workspace.Timing = approval.Timing{
		Timeout: 4 * time.Hour, RemindEvery: time.Hour, RemindBefore: 30 * time.Minute,
		EscalateAfter: 2 * time.Hour, EscalateTo: approval.Approvers{Users: []approval.UserID{"erin"}},
	}
	return in
}

// at returns when, after the start, each event of a kind was sent.
func (h *harness) at(kind activities.EventKind, start time.Time) []time.Duration {
	var out []time.Duration
	for _, e := range h.eventTimes {
		if e.kind == kind {
			out = append(out, e.at.Sub(start).Round(time.Second))
		}
	}
	return out
}

func TestRemindersEscalationAndDeadline(t *testing.T) {
	h := newHarness(t)
	start := h.env.Now()
	got := h.run(timedInput())
	if got.Status != approval.StatusTimedOut || len(h.applies) != 0 {
		t.Fatalf("status %s, %d applies; want timed_out, none", got.Status, len(h.applies))
	}
	reminders := h.at(activities.EventReminder, start)
	want := []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour, 3*time.Hour + 30*time.Minute}
	if !slices.Equal(reminders, want) {
		t.Errorf("reminders at %v; want %v", reminders, want)
	}
	esc := h.eventsOf(activities.EventEscalated)
	if len(esc) != 1 || !slices.Equal(esc[0].Recipients, []approval.UserID{"erin"}) || !slices.Equal(h.at(activities.EventEscalated, start), []time.Duration{2 * time.Hour}) {
		t.Errorf("escalations %+v; want erin told once at 2h", esc)
	}
	// After escalation erin is among those reminded.
	last := h.eventsOf(activities.EventReminder)[3]
	if !slices.Contains(last.Recipients, "erin") || !slices.Contains(last.Recipients, "bob") {
		t.Errorf("last reminder to %v; want bob, carol, victor and erin", last.Recipients)
	}
	if got.UpdatedAt.Sub(start) != 4*time.Hour {
		t.Errorf("timed out after %v; want 4h", got.UpdatedAt.Sub(start))
	}
	if n := len(h.eventsOf(activities.EventApprovalRequested)); n != 1 {
		t.Errorf("%d approval requests; want 1", n)
	}
	for i, e := range h.events {
		if e.ID == "" || (i > 0 && e.ID == h.events[i-1].ID) {
			t.Errorf("event %d has id %q; want unique ids", i, e.ID)
		}
	}
}

func TestEscalatedOwnerApproves(t *testing.T) {
	h := newHarness(t)
	early := h.update(time.Hour, workflows.UpdateApprove, "e1", approval.Request{Actor: erin})
	h.update(90*time.Minute, workflows.UpdateApprove, "b", approval.Request{Actor: bob})
	late := h.update(2*time.Hour+time.Minute, workflows.UpdateApprove, "e2", approval.Request{Actor: erin})
	got := h.run(timedInput())
	if errType(early.err) != string(approval.CodeForbidden) {
		t.Errorf("erin before escalation: %v; want forbidden", early.err)
	}
	if late.err != nil || got.Status != approval.StatusApplied {
		t.Errorf("erin after escalation: %v, run %s; want her approval to complete the run", late.err, got.Status)
	}
	var kinds []approval.DecisionKind
	for _, d := range got.Decisions {
		kinds = append(kinds, d.Kind)
	}
	if !slices.Equal(kinds, []approval.DecisionKind{"approve", "escalate", "approve"}) {
		t.Errorf("trail %v; want approve, escalate, approve", kinds)
	}
	if got.Decisions[2].ResponseSeconds != (2*time.Hour + time.Minute).Seconds() {
		t.Errorf("erin's response time %vs; want %v", got.Decisions[2].ResponseSeconds, (2*time.Hour + time.Minute).Seconds())
	}
}

func TestPerRuleTimeoutEarliestWins(t *testing.T) {
	h := newHarness(t)
	fast := approval.Rule{Name: "fast", Approvers: approval.Approvers{Users: []approval.UserID{"dave"}}, MinApprovals: 1,
		Timing: approval.Timing{Timeout: 20 * time.Minute}}
	in := input(destroysNeedTwo, fast)
	in.Directory = append(in.Directory, dave)
	start := h.env.Now()
	got := h.run(in)
	if got.Status != approval.StatusTimedOut || got.UpdatedAt.Sub(start) != 20*time.Minute {
		t.Errorf("status %s after %v; want timed_out at 20m, the earliest open deadline", got.Status, got.UpdatedAt.Sub(start))
	}
}

func TestDecisionAndTimerAtTheSameMoment(t *testing.T) {
	for _, offset := range []time.Duration{-time.Millisecond, 0, time.Millisecond} {
		h := newHarness(t)
		h.update(time.Minute, workflows.UpdateApprove, "b", approval.Request{Actor: bob})
		last := h.update(4*time.Hour+offset, workflows.UpdateApprove, "c", approval.Request{Actor: carol})
		got := h.run(input(destroysNeedTwo))
		switch got.Status {
		case approval.StatusApplied:
			if last.err != nil || len(h.applies) != 1 {
				t.Errorf("offset %v: applied, but the approval said %v and %d applies ran", offset, last.err, len(h.applies))
			}
		case approval.StatusTimedOut:
			if len(h.applies) != 0 || (last.ok && errType(last.err) != string(approval.CodeConflict)) {
				t.Errorf("offset %v: timed out, but the approval said %v and %d applies ran", offset, last.err, len(h.applies))
			}
		default:
			t.Errorf("offset %v: status %s; want applied or timed_out", offset, got.Status)
		}
	}
}

func TestFailingNotifierNeverBlocksTheRun(t *testing.T) {
	env := newEnv()
	acts := &activities.Activities{}
	worker.Register(env, testRunner(), acts)
	onNotify(env, acts, func(activities.Event) (activities.NotifyResult, error) {
		return activities.NotifyResult{}, temporal.NewNonRetryableApplicationError("webhook refused", "WebhookRefused", nil)
	})
	env.OnActivity(acts.Apply, mock.Anything, mock.Anything).Return(approval.ApplyResult{Executed: true}, nil)
	env.ExecuteWorkflow(workflows.RunWorkflowName, input().input(t, testWorkflowID, env.Now()))
	var got approval.Run
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if got.Status != approval.StatusApplied {
		t.Errorf("status %s; want applied despite the notifier", got.Status)
	}
	if len(got.NotifyFailures) == 0 || got.NotifyFailures[0].Error != "webhook refused" {
		t.Errorf("notify failures %+v; want the refusal recorded", got.NotifyFailures)
	}
}

func TestRenotifyIsRateLimitedInState(t *testing.T) {
	h := newHarness(t)
	first := h.update(time.Minute, workflows.UpdateRenotify, "n1", approval.Request{Actor: alice})
	second := h.update(3*time.Minute, workflows.UpdateRenotify, "n2", approval.Request{Actor: bob})
	third := h.update(7*time.Minute, workflows.UpdateRenotify, "n3", approval.Request{Actor: bob})
	h.update(8*time.Minute, workflows.UpdateCancel, "x", approval.Request{Actor: alice, Comment: "done"})
	h.run(input(destroysNeedTwo))
	if first.err != nil || third.err != nil {
		t.Errorf("renotify at 1m and 7m: %v, %v; want both accepted", first.err, third.err)
	}
	var appErr *temporal.ApplicationError
	var retry float64
	if !errors.As(second.err, &appErr) || appErr.Type() != string(approval.CodeRateLimited) || appErr.Details(&retry) != nil || retry != 180 {
		t.Errorf("renotify at 3m: %v (retry %vs); want rate_limited with 180s to wait", second.err, retry)
	}
	if n := len(h.eventsOf(activities.EventRenotify)); n != 2 {
		t.Errorf("%d renotify notices; want 2", n)
	}
}

// TestThirtyDayRunStaysBounded waits 30 days with hourly reminders. The run
// continues as new whenever it has woken up MaxWakeups times; each workflow
// run of the chain is followed here, as Temporal would, with the state it
// carries. Approvals, Update-ID deduplication and deadlines survive the
// hand-overs.
func TestThirtyDayRunStaysBounded(t *testing.T) {
	const maxWakeups = 150
	d := input(destroysNeedTwo)
	d.Workspace.Timing = approval.Timing{Timeout: 31 * 24 * time.Hour, RemindEvery: time.Hour}
	d.MaxWakeups = maxWakeups

	start := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	in := d.input(t, testWorkflowID, start)
	now := start
	// bob approves on day 3; on day 20, long after several hand-overs, a
	// retry of his request arrives (same Update ID) carrying carol's
	// identity: it must not count; carol approves on day 29.
	type planned struct {
		at      time.Time
		id      string
		actor   approval.Identity
		outcome *outcome
	}
	var pending []*planned
	for _, d := range []struct {
		day   int
		id    string
		actor approval.Identity
	}{{3, "bob-1", bob}, {20, "bob-1", carol}, {29, "carol-1", carol}} {
		pending = append(pending, &planned{at: start.Add(time.Duration(d.day)*24*time.Hour + 30*time.Minute), id: d.id, actor: d.actor})
	}
	var segments, reminders int
	var final approval.Run
	for {
		segments++
		if segments > 20 {
			t.Fatal("no end to continue-as-new")
		}
		h := newHarness(t)
		h.env.SetStartTime(now)
		if segments > 1 {
			// Temporal starts the next workflow run of the chain.
			h.env.SetContinuedExecutionRunID(fmt.Sprintf("run-%d", segments-1))
		}
		segStart := now
		offset := func(at time.Time) time.Duration { return at.Sub(segStart) }
		for _, p := range pending {
			if !p.at.Before(segStart) && p.outcome == nil {
				p.outcome = h.update(offset(p.at), workflows.UpdateApprove, p.id, approval.Request{Actor: p.actor})
			}
		}
		h.env.ExecuteWorkflow(workflows.RunWorkflowName, in)
		reminders += len(h.eventsOf(activities.EventReminder))
		if n := len(h.eventsOf(activities.EventReminder)); n > maxWakeups {
			t.Errorf("segment %d sent %d reminders; want at most %d wake-ups per workflow run", segments, n, maxWakeups)
		}
		now = h.env.Now()
		for _, p := range pending {
			if p.outcome != nil && !p.outcome.ok {
				p.outcome = nil // the segment ended first: deliver it to the next one
			}
		}
		err := h.env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			in = workflows.RunInput{}
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &in); err != nil {
				t.Fatal(err)
			}
			if in.Resume == nil {
				t.Fatal("continued as new without the run's state")
			}
			continue
		}
		if err != nil {
			t.Fatalf("segment %d: %v", segments, err)
		}
		if err := h.env.GetWorkflowResult(&final); err != nil {
			t.Fatal(err)
		}
		if len(h.applies) != 1 {
			t.Errorf("applies in the last segment: %d; want 1", len(h.applies))
		}
		break
	}
	if final.Status != approval.StatusApplied {
		t.Fatalf("status %s; want applied", final.Status)
	}
	t.Logf("29 days of hourly reminders: %d reminders over %d workflow runs", reminders, segments)
	if segments < 4 {
		t.Errorf("%d workflow runs; want the 29-day wait split into several", segments)
	}
	if want := 29 * 24; reminders < want-2 || reminders > want+1 {
		t.Errorf("%d reminders over 29 days; want about %d (hourly)", reminders, want)
	}
	var approvals int
	for _, d := range final.Decisions {
		if d.Kind == approval.DecisionApprove {
			approvals++
		}
	}
	if approvals != 2 || final.Reasons[0].Approvals[0].DecisionID != "bob-1" || final.Reasons[0].Approvals[1].DecisionID != "carol-1" {
		t.Errorf("%d approvals (%+v); want bob's (once, despite the retry after hand-overs) and carol's", approvals, final.Decisions)
	}
	if p := pending[1].outcome; p == nil || p.err != nil || p.res.DecisionID != "bob-1" || p.run.Reasons[0].Progress() != "1/2" {
		t.Errorf("the day-20 retry: %+v; want the run answered unchanged at 1/2", p)
	}
	if final.ID == "" || final.CreatedAt.Sub(start) != 0 {
		t.Errorf("run id %q created %v; want the original run's identity kept", final.ID, final.CreatedAt)
	}
}

// TestWaitKeepsOneTimerWhileItsInstantStays: decisions that wake the run
// without moving its deadline start no timer of their own (on the old
// AwaitWithTimeout each wake started one, and none was cancelled), and a
// timer whose instant moved is cancelled, not left to fire for nothing.
func TestWaitKeepsOneTimerWhileItsInstantStays(t *testing.T) {
	for _, tc := range []struct {
		name string
		// decide sends the decisions, given the run's draft.
		decide        func(h *harness, in draft)
		status        approval.Status
		wantStarted   []time.Duration
		wantCancelled int
	}{
		{
			name: "same deadline",
			decide: func(h *harness, _ draft) {
				h.update(10*time.Minute, workflows.UpdateApprove, "b", approval.Request{Actor: bob})
				h.update(20*time.Minute, workflows.UpdateRenotify, "n", approval.Request{Actor: alice})
			},
			status: approval.StatusTimedOut, wantStarted: []time.Duration{4 * time.Hour},
		},
		{
			name: "deadline moved by a new round",
			decide: func(h *harness, in draft) {
				h.update(10*time.Minute, workflows.UpdateRequestChanges, "rc", approval.Request{Actor: carol, Comment: "tag it"})
				h.update(30*time.Minute, workflows.UpdateRevisePlan, "rp", in.revise(alice, in.Plan))
			},
			status: approval.StatusTimedOut, wantStarted: []time.Duration{4 * time.Hour, 4 * time.Hour}, wantCancelled: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			var started []time.Duration
			cancelled := 0
			h.env.SetOnTimerScheduledListener(func(_ string, d time.Duration) { started = append(started, d.Round(time.Minute)) })
			h.env.SetOnTimerCanceledListener(func(string) { cancelled++ })
			in := input(destroysNeedTwo)
			in.Workspace.Timing = approval.Timing{Timeout: 4 * time.Hour}
			tc.decide(h, in)
			got := h.run(in)
			if got.Status != tc.status {
				t.Fatalf("status %s; want %s", got.Status, tc.status)
			}
			if !slices.Equal(started, tc.wantStarted) || cancelled != tc.wantCancelled {
				t.Errorf("timers started %v, %d cancelled; want %v, %d cancelled", started, cancelled, tc.wantStarted, tc.wantCancelled)
			}
		})
	}
}
