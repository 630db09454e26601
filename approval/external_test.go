package approval_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// externalWorkspace hands approval to ServiceNow; its rules and sign-off are
// kept, on hold.
func externalWorkspace() approval.Workspace {
	ws := lifecycleWorkspace(false)
	ws.External = &approval.ExternalApproval{Provider: approval.ProviderServiceNow, PollEvery: 5 * time.Minute}
	return ws
}

func externalRun(t *testing.T) approval.Run {
	t.Helper()
	run := newRunFor(externalWorkspace(), alice, destroyPlan(), nil, directory, t0)
	if err := run.TicketOpened(approval.External{ID: "sys1", Ref: "CHG0030001", Link: "https://sn.example/x"}, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	return run
}

func snDecision(v approval.Verdict) approval.ExternalDecision {
	return approval.ExternalDecision{Provider: approval.ProviderServiceNow, TicketID: "sys1", Verdict: v, Via: approval.ViaCallback}
}

func codeOf(err error) approval.Code {
	var de *approval.Error
	if errors.As(err, &de) {
		return de.Code
	}
	return ""
}

func TestExternalRunHoldsEveryReasonAndTimesOut(t *testing.T) {
	run := newRunFor(externalWorkspace(), alice, destroyPlan(), nil, directory, t0)
	if run.Status != approval.StatusPendingApproval || !run.NeedsTicket() {
		t.Fatalf("status %s, needs ticket %v; want pending_approval needing a ticket", run.Status, run.NeedsTicket())
	}
	ids := map[string]approval.ReasonState{}
	for _, r := range run.Reasons {
		ids[r.ID] = r.State
	}
	want := map[string]approval.ReasonState{approval.ExternalReasonID: approval.ReasonOnHold, "rule:destroys-need-two": approval.ReasonOnHold, "step:signoff": approval.ReasonOnHold}
	for id, st := range want {
		if ids[id] != st {
			t.Errorf("reason %s is %q; want %q (all: %v)", id, ids[id], st, ids)
		}
	}
	if !run.Deadline.Equal(t0.Add(time.Hour)) {
		t.Errorf("deadline %s; want the workspace timeout from now", run.Deadline)
	}
	if len(run.PendingApprovers()) != 0 || len(run.OpenReasons()) != 0 {
		t.Errorf("nobody in Gatehouse is asked: pending %v open %v", run.PendingApprovers(), run.OpenReasons())
	}
	if due := run.DueAt(t0.Add(time.Hour)); !due.Expired {
		t.Fatal("the deadline of a held run does not expire it: it would wait forever")
	}
	if err := run.TimeOut(t0.Add(time.Hour)); err != nil || run.Status != approval.StatusTimedOut {
		t.Fatalf("time out: %v, %s", err, run.Status)
	}
}

func TestExternalWorkspaceWithoutRulesStillWaits(t *testing.T) {
	ws := approval.Workspace{Name: "x", Timing: approval.Timing{Timeout: time.Hour}, External: &approval.ExternalApproval{Provider: approval.ProviderJira}}
	run := newRunFor(ws, alice, destroyPlan(), nil, directory, t0)
	if run.Status != approval.StatusPendingApproval {
		t.Fatalf("a workspace without rules was %s: it must still go to the external system", run.Status)
	}
}

func TestExternalRunRefusesInternalDecisions(t *testing.T) {
	run := externalRun(t)
	checks := map[string]error{
		"approve":         run.CheckApprove(req("a", bob, "ok")),
		"reject":          run.CheckReject(req("r", bob, "no")),
		"revoke":          run.CheckRevoke(req("v", bob, "")),
		"request_changes": run.CheckRequestChanges(req("c", bob, "redo")),
		"bypass":          run.CheckBypass(req("b", erin, "now")),
	}
	for verb, err := range checks {
		if codeOf(err) != approval.CodeConflict || !strings.Contains(err.Error(), "ServiceNow CHG0030001") {
			t.Errorf("%s on an external run: %v; want a conflict naming the ticket", verb, err)
		}
	}
	if err := run.CheckCancel(req("x", erin, "stop")); err != nil {
		t.Errorf("an admin may still cancel: %v", err)
	}
}

func TestExternalApprovalApprovesEverything(t *testing.T) {
	run := externalRun(t)
	d := snDecision(approval.VerdictApproved)
	d.Actor, d.Comment = "jane.doe", "CAB ok"
	changed, err := run.DecideExternal(d, t0.Add(time.Minute))
	if err != nil || !changed {
		t.Fatalf("decide: %v %v", changed, err)
	}
	if run.Status != approval.StatusApproved {
		t.Fatalf("status %s; want approved", run.Status)
	}
	for _, r := range run.Reasons {
		if r.State != approval.ReasonApproved {
			t.Errorf("reason %s is %s after the external approval", r.ID, r.State)
		}
	}
	last := run.Decisions[len(run.Decisions)-1]
	if last.Kind != approval.DecisionApprove || last.UserID != "servicenow:jane.doe" || last.Comment != "CAB ok" || last.Channel != "servicenow" {
		t.Errorf("decision %+v", last)
	}
	// A repeat changes nothing; another verdict is a conflict.
	if changed, err := run.DecideExternal(d, t0.Add(2*time.Minute)); err != nil || changed {
		t.Errorf("repeat: %v %v; want no change, no error", changed, err)
	}
	if _, err := run.DecideExternal(snDecision(approval.VerdictRejected), t0.Add(2*time.Minute)); codeOf(err) != approval.CodeConflict {
		t.Errorf("a different decision after the one that counted: %v; want conflict", err)
	}
}

func TestExternalApprovalWithoutDetailsNamesTheTicket(t *testing.T) {
	run := externalRun(t)
	d := snDecision(approval.VerdictApproved)
	d.Via = approval.ViaReconciliation
	if _, err := run.DecideExternal(d, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	last := run.Decisions[len(run.Decisions)-1]
	if last.UserID != "servicenow" || last.Comment != "approved in ServiceNow CHG0030001 (seen by reconciliation)" {
		t.Errorf("decision %+v", last)
	}
}

func TestExternalRejectionCancelsTheRun(t *testing.T) {
	for _, v := range []approval.Verdict{approval.VerdictRejected, approval.VerdictCancelled} {
		run := externalRun(t)
		d := snDecision(v)
		d.Actor, d.Comment = "cab", "too risky"
		if _, err := run.DecideExternal(d, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		last := run.Decisions[len(run.Decisions)-1]
		if run.Status != approval.StatusCancelled || last.UserID != "servicenow:cab" || last.Comment != "too risky" {
			t.Errorf("%s: status %s decision %+v", v, run.Status, last)
		}
	}
}

func TestExternalDecisionsThatDecideNothing(t *testing.T) {
	run := externalRun(t)
	d := snDecision(approval.VerdictNone)
	d.State = "approval=requested state=-4"
	if changed, err := run.DecideExternal(d, t0.Add(time.Minute)); err != nil || changed {
		t.Fatalf("%v %v", changed, err)
	}
	if run.Status != approval.StatusPendingApproval || run.External.State != d.State {
		t.Errorf("status %s, state %q: the update should only refresh the ticket's state", run.Status, run.External.State)
	}
	other := snDecision(approval.VerdictApproved)
	other.TicketID = "sys2"
	if _, err := run.DecideExternal(other, t0.Add(time.Minute)); codeOf(err) != approval.CodeConflict || run.Status != approval.StatusPendingApproval {
		t.Errorf("another ticket's approval: %v, %s; want conflict and no change", err, run.Status)
	}
	jira := snDecision(approval.VerdictApproved)
	jira.Provider = approval.ProviderJira
	if _, err := run.DecideExternal(jira, t0.Add(time.Minute)); codeOf(err) != approval.CodeConflict {
		t.Errorf("another provider's approval: %v", err)
	}
}

func TestExternalDecisionAfterInternalCancel(t *testing.T) {
	run := externalRun(t)
	if err := run.Cancel(req("x", erin, "stop"), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := run.DecideExternal(snDecision(approval.VerdictApproved), t0.Add(2*time.Minute)); codeOf(err) != approval.CodeConflict || run.Status != approval.StatusCancelled {
		t.Errorf("approval after cancel: %v, %s", err, run.Status)
	}
}

func TestExternalLongTextIsCutNotRefused(t *testing.T) {
	run := externalRun(t)
	d := snDecision(approval.VerdictApproved)
	d.Comment = strings.Repeat("é", approval.MaxCommentBytes)
	if _, err := run.DecideExternal(d, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if c := run.Decisions[len(run.Decisions)-1].Comment; len(c) > approval.MaxCommentBytes || !strings.HasSuffix(c, "…") {
		t.Errorf("comment of %d bytes", len(c))
	}
}

func TestExternalReplanAsksAgainWithANewTicket(t *testing.T) {
	run := externalRun(t)
	if _, err := run.DecideExternal(snDecision(approval.VerdictApproved), t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	other := approval.Summarize("def", []approval.Resource{{Address: "a.z", Type: "a", Actions: []approval.Action{approval.ActionDelete}}})
	fresh := approval.Evaluate(externalWorkspace(), other, nil, alice, directory)
	if err := run.Replanned(other.PlanSummary, fresh, approval.Origin{}, "plan changed", t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if run.Status != approval.StatusPendingApproval || !run.NeedsTicket() || run.External.Decision != nil {
		t.Fatalf("status %s needs ticket %v: a changed plan must go back to the external system", run.Status, run.NeedsTicket())
	}
	if len(run.External.Previous) != 1 || run.External.Previous[0] != "sys1" {
		t.Errorf("previous tickets %v", run.External.Previous)
	}
}
