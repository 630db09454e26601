package approval_test

import (
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// trail takes the run's audit trail from mark and returns the actions with
// their status changes, "action:before>after".
func trail(t *testing.T, run *approval.Run, mark *approval.AuditMark, now time.Time) []string {
	t.Helper()
	events, next := run.AuditSince(*mark, now)
	*mark = next
	var out []string
	for _, e := range events {
		if e.RunID != run.ID || e.Workspace != run.Workspace || e.Plan.SHA256 == "" {
			t.Errorf("event %s lacks the run's context: %+v", e.Action, e)
		}
		out = append(out, string(e.Action)+":"+string(e.StatusBefore)+">"+string(e.StatusAfter))
	}
	return out
}

func TestAuditSinceFollowsTheRunThroughItsLife(t *testing.T) {
	run := newRunFor(lifecycleWorkspace(false), alice, destroyPlan(), nil, directory, t0)
	var mark approval.AuditMark
	if got, want := trail(t, &run, &mark, t0), []string{"requested:>pending_approval"}; !slices.Equal(got, want) {
		t.Fatalf("start: got %v, want %v", got, want)
	}
	if got := trail(t, &run, &mark, t0); len(got) != 0 {
		t.Fatalf("nothing changed, yet the trail says %v", got)
	}
	mustApprove(t, &run, "bob-1", bob, t0)
	if got, want := trail(t, &run, &mark, t0), []string{"approved:pending_approval>pending_approval"}; !slices.Equal(got, want) {
		t.Fatalf("first approval: got %v, want %v", got, want)
	}
	mustApprove(t, &run, "carol-1", carol, t0)
	if got, want := trail(t, &run, &mark, t0), []string{"approved:pending_approval>approved"}; !slices.Equal(got, want) {
		t.Fatalf("second approval: got %v, want %v", got, want)
	}
	if err := run.StartApply(t0); err != nil {
		t.Fatal(err)
	}
	if got, want := trail(t, &run, &mark, t0), []string{"apply_started:approved>applying"}; !slices.Equal(got, want) {
		t.Fatalf("apply start: got %v, want %v", got, want)
	}
	if err := run.FinishApply(approval.ApplyResult{Executed: true, ExitCode: 1, Error: "exit status 1"}, t0); err != nil {
		t.Fatal(err)
	}
	events, _ := run.AuditSince(mark, t0.Add(time.Minute))
	if len(events) != 1 || events[0].Action != approval.AuditApplyFailed || events[0].Actor.ID != approval.SystemActor ||
		events[0].Actor.Channel != approval.ChannelSystem || !events[0].At.Equal(t0.Add(time.Minute)) {
		t.Fatalf("failed apply: %+v", events)
	}
}

func TestAuditSinceNamesEveryActorAndChannel(t *testing.T) {
	run := newRunFor(lifecycleWorkspace(false), alice, destroyPlan(), nil, directory, t0)
	events, mark := run.AuditSince(approval.AuditMark{}, t0)
	if e := events[0]; e.Actor.ID != "alice" || e.Actor.Email != alice.Email || e.Actor.Channel != approval.ChannelAPI {
		t.Fatalf("requested by: %+v", e.Actor)
	}
	r := req("slack-1", bob, "looks fine")
	r.Channel = approval.ChannelSlack
	if _, err := run.Approve(r, t0.Add(90*time.Second)); err != nil {
		t.Fatal(err)
	}
	events, mark = run.AuditSince(mark, t0)
	e := events[0]
	if e.Actor.ID != "bob" || e.Actor.Channel != approval.ChannelSlack || e.Comment != "looks fine" || e.ResponseSeconds != 90 || len(e.ReasonIDs) == 0 {
		t.Fatalf("slack approval: %+v", e)
	}
	if err := run.Reject(req("rj", carol, "too risky"), t0); err != nil {
		t.Fatal(err)
	}
	events, _ = run.AuditSince(mark, t0)
	if e := events[0]; e.Action != approval.AuditRejected || e.Actor.Channel != approval.ChannelAPI || e.StatusAfter != approval.StatusRejected {
		t.Fatalf("rejection: %+v", e)
	}
}

func TestAuditSinceRecordsPolicyAndTimeouts(t *testing.T) {
	run := newRunFor(lifecycleWorkspace(true), alice, destroyPlan(), nil, directory, t0)
	var mark approval.AuditMark
	trail(t, &run, &mark, t0)
	if err := run.ApplyPolicy(approval.PolicyResult{Denials: []string{"no destroys on Fridays"}}, nil, t0); err != nil {
		t.Fatal(err)
	}
	events, _ := run.AuditSince(mark, t0)
	if len(events) != 1 || events[0].Action != approval.AuditPolicyEvaluated || events[0].Detail != "no destroys on Fridays" ||
		events[0].StatusAfter != approval.StatusPolicyFailed {
		t.Fatalf("policy denial: %+v", events)
	}

	run = runIn(t, approval.StatusPendingApproval)
	mark = approval.AuditMark{}
	trail(t, &run, &mark, t0)
	if err := run.TimeOut(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := trail(t, &run, &mark, t0.Add(time.Hour)); !slices.Contains(got, "timed_out:pending_approval>timed_out") {
		t.Fatalf("timeout: %v", got)
	}
}

func TestAuditSinceDoesNotRepeatAfterAMarkFromALongerTrail(t *testing.T) {
	run := runIn(t, approval.StatusPendingApproval)
	events, _ := run.AuditSince(approval.AuditMark{Decisions: 99, Status: run.Status}, t0)
	if len(events) != 0 {
		t.Fatalf("a mark past the trail's end lists %d events", len(events))
	}
}

func TestStatusActionsAreNotDecisions(t *testing.T) {
	for _, a := range approval.AuditActions {
		for _, pair := range [][2]approval.Status{{"", approval.StatusPendingApproval}, {approval.StatusApplying, approval.StatusFailed}} {
			if approval.StatusAction(pair[0], pair[1]) == a && a.Decided() {
				t.Errorf("%s is both a status change and a decision", a)
			}
		}
	}
	if approval.DecisionAction(approval.Decision{Kind: approval.DecisionApprove, UserID: "servicenow:jdoe"}) != approval.AuditExternalDecision {
		t.Error("an approval from ServiceNow is not an external decision")
	}
}

// Viewers never decide, so nobody waits for them or asks them to approve,
// even where a reason names their group.
func TestViewersAreNeverWaitedFor(t *testing.T) {
	viewer := approval.Identity{ID: "victor", Groups: []string{"platform"}, Roles: []approval.Role{approval.RoleViewer}}
	dir := append(slices.Clone(directory), viewer)
	run := newRunFor(lifecycleWorkspace(false), alice, destroyPlan(), nil, dir, t0)
	for _, r := range run.Reasons {
		if slices.Contains(r.Eligible, "victor") {
			t.Errorf("reason %s waits for the viewer victor: %v", r.ID, r.Eligible)
		}
	}
	if slices.Contains(run.PendingApprovers(), "victor") {
		t.Error("the viewer victor is a pending approver")
	}
}
