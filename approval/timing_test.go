package approval_test

import (
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

func timedWorkspace() approval.Workspace {
	fast := approval.Rule{Name: "fast", Approvers: approval.Approvers{Groups: []string{"security"}}, MinApprovals: 1,
		Timing: approval.Timing{Timeout: 30 * time.Minute}}
	ws := prodWorkspace(destroysNeedTwo, fast)
	ws.Timing = approval.Timing{
		Timeout: 4 * time.Hour, RemindEvery: time.Hour, RemindBefore: 30 * time.Minute,
		EscalateAfter: 2 * time.Hour, EscalateTo: approval.Approvers{Users: []approval.UserID{"erin", "olga"}},
	}
	return ws
}

func TestTimingOverridesInherit(t *testing.T) {
	run := newRun(t, timedWorkspace(), destroyPlan())
	slow, fast := run.Reasons[0], run.Reasons[1]
	if slow.Timing.Timeout != 4*time.Hour || fast.Timing.Timeout != 30*time.Minute || fast.Timing.RemindEvery != time.Hour {
		t.Errorf("timings %+v, %+v; want 4h and an overridden 30m that inherits remind_every", slow.Timing, fast.Timing)
	}
	if !run.Deadline.Equal(t0.Add(30 * time.Minute)) {
		t.Errorf("deadline %v; want the earliest open reason's, %v", run.Deadline, t0.Add(30*time.Minute))
	}
	// Once the fast reason is approved, the run's deadline is the slow one's.
	mustApprove(t, &run, "d", dave, t0.Add(10*time.Minute))
	if !run.Deadline.Equal(t0.Add(4 * time.Hour)) {
		t.Errorf("deadline %v after the fast reason; want %v", run.Deadline, t0.Add(4*time.Hour))
	}
	if got := run.Decisions[0].ResponseSeconds; got != 600 {
		t.Errorf("response time %vs; want 600 (opened to decision)", got)
	}
}

func TestDefaultTimeoutWhenNothingSays(t *testing.T) {
	ws := prodWorkspace(destroysNeedTwo)
	ws.Timing = approval.Timing{}
	run := newRun(t, ws, destroyPlan())
	if !run.Deadline.Equal(t0.Add(approval.DefaultTimeout)) {
		t.Errorf("deadline %v; want the default %v after opening", run.Deadline, approval.DefaultTimeout)
	}
}

func TestScheduleOfRemindersEscalationAndDeadline(t *testing.T) {
	ws := timedWorkspace()
	ws.Rules = ws.Rules[:1] // destroys-need-two only: 4h, remind hourly and 30m before, escalate at 2h
	run := newRun(t, ws, destroyPlan())
	type step struct {
		at       time.Duration
		remind   bool
		escalate bool
		expired  bool
	}
	var seen []step
	now := t0
	for i := 0; i < 20; i++ {
		next := run.NextWake()
		if next.IsZero() {
			t.Fatal("nothing to wake for while the run waits")
		}
		now = next
		due := run.DueAt(now)
		seen = append(seen, step{now.Sub(t0), len(due.Remind) > 0, len(due.Escalate) > 0, due.Expired})
		if due.Expired {
			if err := run.TimeOut(now); err != nil {
				t.Fatalf("time out at %v: %v", now.Sub(t0), err)
			}
			break
		}
		run.Remind(due.Remind, now)
		run.Escalate(due.Escalate, now)
	}
	want := []step{
		{time.Hour, true, false, false},
		{2 * time.Hour, true, true, false},
		{3 * time.Hour, true, false, false},
		{3*time.Hour + 30*time.Minute, true, false, false}, // remind_before
		{4 * time.Hour, false, false, true},
	}
	if !slices.Equal(seen, want) {
		t.Errorf("schedule %+v; want %+v", seen, want)
	}
	if run.Status != approval.StatusTimedOut {
		t.Errorf("status %s; want timed_out", run.Status)
	}
}

func TestEscalationMakesFallbackOwnersEligible(t *testing.T) {
	ws := timedWorkspace()
	ws.Rules = ws.Rules[:1]
	run := newRun(t, ws, destroyPlan())
	if err := run.CheckApprove(approval.Request{Actor: olga}); approval.ErrorCode(err) != approval.CodeForbidden {
		t.Fatalf("olga before escalation: %v; want forbidden", err)
	}
	at := t0.Add(2 * time.Hour)
	told := run.Escalate(run.DueAt(at).Escalate, at)
	if !slices.Equal(told, []approval.UserID{"erin", "olga"}) {
		t.Errorf("told %v; want the fallback owners erin and olga", told)
	}
	if err := run.CheckApprove(approval.Request{Actor: olga}); err != nil {
		t.Errorf("olga after escalation: %v; want eligible", err)
	}
	// erin is an admin named by the escalation: she may approve now.
	if err := run.CheckApprove(approval.Request{Actor: erin}); err != nil {
		t.Errorf("erin after escalation: %v; want eligible", err)
	}
	last := run.Decisions[len(run.Decisions)-1]
	if last.Kind != approval.DecisionEscalate || last.UserID != approval.SystemActor || run.Reasons[0].EscalatedAt == nil {
		t.Errorf("decision %+v; want the escalation recorded by the system", last)
	}
	if again := run.Escalate([]string{run.Reasons[0].ID}, at.Add(time.Minute)); len(again) != 0 {
		t.Errorf("escalated twice: %v", again)
	}
}

func TestRemindSkipsMissedReminders(t *testing.T) {
	ws := timedWorkspace()
	ws.Rules = ws.Rules[:1]
	run := newRun(t, ws, destroyPlan())
	// Nobody ran for 2.5 hours: one reminder now, the next one at 3h.
	now := t0.Add(150 * time.Minute)
	who := run.Remind(run.DueAt(now).Remind, now)
	if len(who) == 0 {
		t.Fatal("no one reminded")
	}
	run.Escalate(run.DueAt(now).Escalate, now)
	if next := run.NextWake(); !next.Equal(t0.Add(3 * time.Hour)) {
		t.Errorf("next wake %v; want 3h after opening", next.Sub(t0))
	}
}

func TestRemindersGoToPendingApproversOnly(t *testing.T) {
	ws := timedWorkspace()
	ws.Rules = ws.Rules[:1]
	run := newRun(t, ws, destroyPlan())
	mustApprove(t, &run, "b", bob, t0)
	who := run.Remind([]string{"rule:destroys-need-two"}, t0.Add(time.Hour))
	if slices.Contains(who, "bob") || !slices.Contains(who, "carol") {
		t.Errorf("reminded %v; want carol (pending), not bob (approved)", who)
	}
}

func TestRenotifyRateLimit(t *testing.T) {
	run := newRun(t, prodWorkspace(destroysNeedTwo), destroyPlan())
	for _, tc := range []struct {
		who   approval.Identity
		at    time.Duration
		code  approval.Code
		retry time.Duration
	}{
		{alice, 0, "", 0},
		{bob, time.Minute, approval.CodeRateLimited, 4 * time.Minute},
		{bob, 5 * time.Minute, "", 0},
		{victor, 20 * time.Minute, approval.CodeForbidden, 0},
		{olga, 20 * time.Minute, approval.CodeForbidden, 0},
	} {
		_, err := run.Renotify(approval.Request{ID: "r", Actor: tc.who}, t0.Add(tc.at))
		if got := approval.ErrorCode(err); got != tc.code {
			t.Fatalf("%s at %v: code %q (%v); want %q", tc.who.ID, tc.at, got, err, tc.code)
		}
		if tc.code == approval.CodeRateLimited {
			if e := err.(*approval.Error); e.RetryAfter != tc.retry {
				t.Errorf("retry after %v; want %v", e.RetryAfter, tc.retry)
			}
		}
	}
	if err := run.Reject(approval.Request{ID: "x", Actor: bob, Comment: "no"}, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := run.Renotify(approval.Request{Actor: alice}, t0.Add(time.Hour)); approval.ErrorCode(err) != approval.CodeConflict {
		t.Errorf("renotify on a rejected run: %v; want conflict", err)
	}
}

func TestTimingOverEachFieldInheritsAlone(t *testing.T) {
	base := approval.Timing{Timeout: 4 * time.Hour, RemindEvery: time.Hour, RemindBefore: 30 * time.Minute,
		EscalateAfter: 2 * time.Hour, EscalateTo: approval.Approvers{Users: []approval.UserID{"erin"}}}
	sre := approval.Approvers{Groups: []string{"sre"}}
	for _, tc := range []struct {
		name string
		over approval.Timing
		want approval.Timing
	}{
		{"nothing set inherits everything", approval.Timing{}, base},
		{"escalate_after alone keeps the workspace's owners",
			approval.Timing{EscalateAfter: time.Hour},
			approval.Timing{Timeout: 4 * time.Hour, RemindEvery: time.Hour, RemindBefore: 30 * time.Minute, EscalateAfter: time.Hour, EscalateTo: base.EscalateTo}},
		{"escalate_to alone keeps the workspace's delay",
			approval.Timing{EscalateTo: sre},
			approval.Timing{Timeout: 4 * time.Hour, RemindEvery: time.Hour, RemindBefore: 30 * time.Minute, EscalateAfter: 2 * time.Hour, EscalateTo: sre}},
		{"timeout alone", approval.Timing{Timeout: time.Hour},
			approval.Timing{Timeout: time.Hour, RemindEvery: time.Hour, RemindBefore: 30 * time.Minute, EscalateAfter: 2 * time.Hour, EscalateTo: base.EscalateTo}},
	} {
		got := tc.over.Over(base)
		if got.Timeout != tc.want.Timeout || got.RemindEvery != tc.want.RemindEvery || got.RemindBefore != tc.want.RemindBefore ||
			got.EscalateAfter != tc.want.EscalateAfter || !slices.Equal(got.EscalateTo.Users, tc.want.EscalateTo.Users) || !slices.Equal(got.EscalateTo.Groups, tc.want.EscalateTo.Groups) {
			t.Errorf("%s: got %+v; want %+v", tc.name, got, tc.want)
		}
	}
}
