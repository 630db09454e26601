package approval_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// A workspace with every stage: a policy-free step at pre_apply, a rule at
// post_plan and a security sign-off after apply.
func stagedWorkspace() approval.Workspace {
	ws := prodWorkspace(destroysNeedTwo,
		approval.Rule{Name: "any-change", Approvers: approval.Approvers{Users: []approval.UserID{"sam"}}, MinApprovals: 1},
	)
	ws.Steps = []approval.Step{
		{Name: "security-signoff", Stage: approval.StagePostApply, Approvers: approval.Approvers{Groups: []string{"security"}}, MinApprovals: 1},
		{Name: "apply-window", Stage: approval.StagePreApply, Approvers: approval.Approvers{Users: []approval.UserID{"dave"}}, MinApprovals: 1},
		{Name: "plan-review", Stage: approval.StagePostPlan, Approvers: approval.Approvers{Users: []approval.UserID{"dave"}}, MinApprovals: 1},
	}
	ws.AllowBypass = true
	return ws
}

func ids(reasons []approval.Reason) []string {
	var out []string
	for _, r := range reasons {
		out = append(out, r.ID)
	}
	return out
}

func states(run approval.Run) string {
	var out []string
	for _, r := range run.Reasons {
		out = append(out, r.Name+"="+string(r.State))
	}
	return strings.Join(out, " ")
}

func mustApprove(t *testing.T, run *approval.Run, id string, who approval.Identity, at time.Time, reasonIDs ...string) {
	t.Helper()
	if _, err := run.Approve(approval.Request{ID: id, Actor: who, ReasonIDs: reasonIDs}, at); err != nil {
		t.Fatalf("%s approves: %v", who.ID, err)
	}
}

func TestReasonsOrderedByStageThenKind(t *testing.T) {
	run := newRun(t, stagedWorkspace(), destroyPlan())
	want := []string{"step:plan-review", "rule:destroys-need-two", "rule:any-change", "step:apply-window", "step:security-signoff"}
	if got := ids(run.Reasons); !slices.Equal(got, want) {
		t.Errorf("order %v; want %v", got, want)
	}
}

func TestStagesOpenInSequence(t *testing.T) {
	run := newRun(t, stagedWorkspace(), destroyPlan())
	want := "plan-review=open destroys-need-two=open any-change=open apply-window=waiting security-signoff=waiting"
	if got := states(run); got != want {
		t.Fatalf("states %s; want %s", got, want)
	}
	// dave is named by plan-review (open) and apply-window (waiting): his
	// approval counts on the open one only.
	mustApprove(t, &run, "d1", dave, t0)
	if got := run.Reasons[3].State; got != approval.ReasonWaiting {
		t.Fatalf("apply-window is %s after dave's first approval; want waiting", got)
	}
	mustApprove(t, &run, "d2", bob, t0)
	mustApprove(t, &run, "d3", sam, t0)
	// dave's open reason is approved; his others wait for their stages, so
	// he has nothing to approve now.
	if _, err := run.Approve(approval.Request{ID: "x", Actor: dave}, t0); approval.ErrorCode(err) != approval.CodeForbidden {
		t.Fatalf("dave again: %v; want forbidden: no open reason for him", err)
	}
	later := t0.Add(30 * time.Minute)
	mustApprove(t, &run, "d4", carol, later)
	if run.Reasons[3].State != approval.ReasonOpen || !run.Deadline.Equal(later.Add(time.Hour)) {
		t.Fatalf("after post_plan: apply-window %s, deadline %v; want open with a new deadline %v", run.Reasons[3].State, run.Deadline, later.Add(time.Hour))
	}
	if run.Status != approval.StatusPendingApproval {
		t.Fatalf("status %s; want pending_approval until pre_apply is approved", run.Status)
	}
	mustApprove(t, &run, "d5", dave, later)
	if run.Status != approval.StatusApproved || run.Reasons[4].State != approval.ReasonWaiting {
		t.Fatalf("status %s, sign-off %s; want approved with the sign-off still waiting (it does not block apply)", run.Status, run.Reasons[4].State)
	}

	if err := run.StartApply(later); err != nil {
		t.Fatalf("start apply: %v", err)
	}
	if err := run.FinishApply(approval.ApplyResult{Executed: true}, later); err != nil {
		t.Fatalf("finish apply: %v", err)
	}
	if run.Status != approval.StatusAwaitingSignoff || run.Reasons[4].State != approval.ReasonOpen {
		t.Fatalf("after apply: %s, sign-off %s; want awaiting_signoff with the sign-off open", run.Status, run.Reasons[4].State)
	}
	if err := run.CheckReject(approval.Request{Actor: carol, Comment: "x"}); approval.ErrorCode(err) != approval.CodeConflict {
		t.Errorf("reject after apply: %v; want conflict", err)
	}
	mustApprove(t, &run, "d6", carol, later) // carol is in security
	if run.Status != approval.StatusApplied {
		t.Errorf("after sign-off: %s; want applied", run.Status)
	}
}

func TestFailedApplyCancelsSignoff(t *testing.T) {
	ws := prodWorkspace()
	ws.Steps = []approval.Step{{Name: "signoff", Stage: approval.StagePostApply, Approvers: approval.Approvers{Users: []approval.UserID{"bob"}}, MinApprovals: 1}}
	run := newRun(t, ws, destroyPlan())
	if run.Status != approval.StatusApproved {
		t.Fatalf("status %s; want approved: a sign-off does not block apply", run.Status)
	}
	if err := run.StartApply(t0); err != nil {
		t.Fatalf("start apply: %v", err)
	}
	if err := run.FinishApply(approval.ApplyResult{Executed: true, ExitCode: 1}, t0); err != nil {
		t.Fatalf("finish apply: %v", err)
	}
	if run.Status != approval.StatusFailed || run.Reasons[0].State != approval.ReasonCancelled {
		t.Errorf("status %s, sign-off %s; want failed and cancelled", run.Status, run.Reasons[0].State)
	}
}

func TestApproveNamedReasons(t *testing.T) {
	ws := prodWorkspace(destroysNeedTwo, securityOne) // carol is in both groups
	for _, tc := range []struct {
		name      string
		who       approval.Identity
		reasonIDs []string
		code      approval.Code
		progress  string // of both reasons afterwards
	}{
		{"all open eligible", carol, nil, "", "1/2 1/1"},
		{"only the named one", carol, []string{"rule:security"}, "", "0/2 1/1"},
		{"unknown reason is a bad request", carol, []string{"rule:nope"}, approval.CodeInvalid, "0/2 0/1"},
		{"named reason the actor may not approve", bob, []string{"rule:security"}, approval.CodeForbidden, "0/2 0/1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := newRun(t, ws, destroyPlan())
			_, err := run.Approve(approval.Request{ID: "a", Actor: tc.who, ReasonIDs: tc.reasonIDs}, t0)
			if got := approval.ErrorCode(err); got != tc.code {
				t.Fatalf("code %q (%v); want %q", got, err, tc.code)
			}
			if got := run.Reasons[0].Progress() + " " + run.Reasons[1].Progress(); got != tc.progress {
				t.Errorf("progress %s; want %s", got, tc.progress)
			}
		})
	}
}

func TestApproveWithOnlyWaitingReasonsIsForbidden(t *testing.T) {
	ws := prodWorkspace(destroysNeedTwo)
	ws.Steps = []approval.Step{{Name: "window", Stage: approval.StagePreApply, Approvers: approval.Approvers{Users: []approval.UserID{"dave"}}, MinApprovals: 1}}
	run := newRun(t, ws, destroyPlan())
	err := run.CheckApprove(approval.Request{Actor: dave})
	if approval.ErrorCode(err) != approval.CodeForbidden || !strings.Contains(err.Error(), "step:window (stage pre_apply)") {
		t.Errorf("got %v; want 403 naming the waiting reason", err)
	}
	if err := run.CheckApprove(approval.Request{Actor: dave, ReasonIDs: []string{"step:window"}}); approval.ErrorCode(err) != approval.CodeConflict {
		t.Errorf("naming the waiting reason: %v; want conflict", err)
	}
}

func TestOnePersonCountsOncePerReason(t *testing.T) {
	// carol matches by user, by group and by role: still one approval.
	rule := approval.Rule{Name: "r", Approvers: approval.Approvers{Users: []approval.UserID{"carol"}, Groups: []string{"security"}, Roles: []approval.Role{approval.RoleApprover}}, MinApprovals: 2}
	run := newRun(t, prodWorkspace(rule), destroyPlan())
	mustApprove(t, &run, "1", carol, t0)
	mustApprove(t, &run, "2", carol, t0)
	if run.Reasons[0].Progress() != "1/2" || len(run.Decisions) != 1 {
		t.Errorf("progress %s with %d decisions; want 1/2 and 1", run.Reasons[0].Progress(), len(run.Decisions))
	}
}

func TestDistinctSourcesAreDistinctPeople(t *testing.T) {
	// The same person with an SSO account and a local account is two
	// identities: both count toward a two-person rule. That is why the README
	// advises against granting one person accounts in both sources.
	ssoAnn := approval.Identity{ID: "ann", Email: "ann@example.com", Source: approval.SourceSSO, Groups: []string{"platform"}}
	localAnn := approval.Identity{ID: "ann-local", Email: "ann@example.com", Source: approval.SourceLocal, Groups: []string{"platform"}}
	run := newRun(t, prodWorkspace(destroysNeedTwo), destroyPlan())
	mustApprove(t, &run, "1", ssoAnn, t0)
	mustApprove(t, &run, "2", localAnn, t0)
	if run.Status != approval.StatusApproved {
		t.Errorf("status %s; want approved by two distinct identities", run.Status)
	}
	if run.Decisions[0].Source != approval.SourceSSO || run.Decisions[1].Source != approval.SourceLocal {
		t.Errorf("decision sources %s, %s; want sso, local", run.Decisions[0].Source, run.Decisions[1].Source)
	}
}

func TestOnBehalfOfMakesThePersonSelf(t *testing.T) {
	bot := approval.Identity{ID: "ci-bot", Automation: true, Groups: []string{"platform"}}
	ws, plan := prodWorkspace(destroysNeedTwo), destroyPlan()
	run := approval.NewRun(approval.NewRunParams{
		ID: "r", Workspace: ws, RequestedBy: bob, SubmittedBy: &bot,
		Plan: plan.PlanSummary, Reasons: approval.Evaluate(ws, plan, nil, bob, directory),
	}, t0)
	if err := run.CheckApprove(approval.Request{Actor: bob}); approval.ErrorCode(err) != approval.CodeForbidden {
		t.Errorf("bob approving a run submitted for him: %v; want self-approval refused", err)
	}
	if err := run.CheckApprove(approval.Request{Actor: bot}); approval.ErrorCode(err) != approval.CodeForbidden {
		t.Errorf("the submitting bot approving: %v; want refused", err)
	}
	if err := run.CheckApprove(approval.Request{Actor: alice}); err != nil {
		t.Errorf("alice approving: %v; want allowed (she did not request it)", err)
	}
	if slices.Contains(run.Reasons[0].Eligible, "bob") {
		t.Errorf("eligible %v lists bob, who requested the run", run.Reasons[0].Eligible)
	}
}

func TestRevoke(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(*approval.Run)
		who      approval.Identity
		code     approval.Code
		progress string
	}{
		{"withdraws an approval below the count", func(r *approval.Run) { mustApprove(t, r, "a", bob, t0) }, bob, "", "0/2"},
		{"nothing to revoke", func(r *approval.Run) {}, bob, approval.CodeConflict, "0/2"},
		{"a satisfied reason is final", func(r *approval.Run) { mustApprove(t, r, "a", bob, t0); mustApprove(t, r, "b", carol, t0) }, bob, approval.CodeConflict, "2/2"},
		{"viewers may not", func(r *approval.Run) {}, victor, approval.CodeForbidden, "0/2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := prodWorkspace(destroysNeedTwo)
			ws.Steps = []approval.Step{{Name: "window", Stage: approval.StagePreApply, Approvers: approval.Approvers{Users: []approval.UserID{"dave"}}, MinApprovals: 1}}
			run := newRun(t, ws, destroyPlan())
			tc.setup(&run)
			err := run.Revoke(approval.Request{ID: "rv", Actor: tc.who}, t0.Add(time.Minute))
			if got := approval.ErrorCode(err); got != tc.code {
				t.Fatalf("code %q (%v); want %q", got, err, tc.code)
			}
			if got := run.Reasons[0].Progress(); got != tc.progress {
				t.Errorf("progress %s; want %s", got, tc.progress)
			}
		})
	}
	t.Run("revoked approver shows as revoked and may approve again", func(t *testing.T) {
		run := newRun(t, prodWorkspace(destroysNeedTwo), destroyPlan())
		mustApprove(t, &run, "a", bob, t0)
		if err := run.Revoke(approval.Request{ID: "rv", Actor: bob, Comment: "saw a problem"}, t0); err != nil {
			t.Fatal(err)
		}
		if st := run.Reasons[0].ApproverStates()[0]; st.UserID != "bob" || st.State != approval.ApproverRevoked {
			t.Errorf("bob's row %+v; want revoked", st)
		}
		mustApprove(t, &run, "b", bob, t0)
		if run.Reasons[0].Progress() != "1/2" || run.Reasons[0].ApproverStates()[0].State != approval.ApproverApproved {
			t.Errorf("after re-approval %s %+v; want 1/2, approved", run.Reasons[0].Progress(), run.Reasons[0].ApproverStates()[0])
		}
		kinds := []approval.DecisionKind{}
		for _, d := range run.Decisions {
			kinds = append(kinds, d.Kind)
		}
		if !slices.Equal(kinds, []approval.DecisionKind{"approve", "revoke", "approve"}) {
			t.Errorf("trail %v; want approve, revoke, approve", kinds)
		}
	})
}

func planWith(sha string, resources ...approval.Resource) approval.Plan {
	return approval.Summarize(sha, resources)
}

var (
	delA    = approval.Resource{Address: "a.x", Type: "a", Actions: []approval.Action{approval.ActionDelete}}
	delB    = approval.Resource{Address: "a.y", Type: "a", Actions: []approval.Action{approval.ActionDelete}}
	updA    = approval.Resource{Address: "a.z", Type: "a", Actions: []approval.Action{approval.ActionUpdate}}
	updB    = approval.Resource{Address: "a.w", Type: "a", Actions: []approval.Action{approval.ActionUpdate}}
	createA = approval.Resource{Address: "a.n", Type: "a", Actions: []approval.Action{approval.ActionCreate}}
)

func TestRevisedPlanResetsOnlyChangedInputs(t *testing.T) {
	changesOne := approval.Rule{Name: "changes-need-one", When: approval.Conditions{ChangesGT: intp(0)}, Approvers: approval.Approvers{Groups: []string{"security"}}, MinApprovals: 1}
	addsOne := approval.Rule{Name: "adds-need-one", When: approval.Conditions{AddsGT: intp(0)}, Approvers: approval.Approvers{Users: []approval.UserID{"sam"}}, MinApprovals: 1}
	ws := prodWorkspace(destroysNeedTwo, changesOne, addsOne)
	first := planWith("p1", delA, updA)
	for _, tc := range []struct {
		name                        string
		revised                     approval.Plan
		kept, reset, added, dropped []string
		destroys, changes           string
		status                      approval.Status
	}{
		{"identical plan keeps everything", planWith("p1", delA, updA), []string{"rule:destroys-need-two", "rule:changes-need-one"}, nil, nil, nil, "1/2", "1/1", approval.StatusPendingApproval},
		{"same destroys, other update", planWith("p2", delA, updB), []string{"rule:destroys-need-two"}, []string{"rule:changes-need-one"}, nil, nil, "1/2", "0/1", approval.StatusPendingApproval},
		{"other destroys, same update", planWith("p3", delB, updA), []string{"rule:changes-need-one"}, []string{"rule:destroys-need-two"}, nil, nil, "0/2", "1/1", approval.StatusPendingApproval},
		{"destroys gone, create added", planWith("p4", updA, createA), []string{"rule:changes-need-one"}, nil, []string{"rule:adds-need-one"}, []string{"rule:destroys-need-two"}, "", "1/1", approval.StatusPendingApproval},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := newRun(t, ws, first)
			mustApprove(t, &run, "b", bob, t0)  // destroys 1/2
			mustApprove(t, &run, "d", dave, t0) // changes 1/1
			if err := run.RequestChanges(approval.Request{ID: "rc", Actor: carol, Comment: "split the NAT change"}, t0); err != nil {
				t.Fatal(err)
			}
			if run.Status != approval.StatusChangesRequested {
				t.Fatalf("status %s; want changes_requested", run.Status)
			}
			later := t0.Add(20 * time.Minute)
			fresh := approval.Evaluate(ws, tc.revised, nil, alice, directory)
			if err := run.RevisePlan(approval.Request{ID: "rp", Actor: alice}, tc.revised.PlanSummary, nil, fresh, later); err != nil {
				t.Fatal(err)
			}
			round := run.Rounds[1]
			if !slices.Equal(round.Kept, tc.kept) || !slices.Equal(round.Reset, tc.reset) || !slices.Equal(round.Added, tc.added) || !slices.Equal(round.Dropped, tc.dropped) {
				t.Errorf("round kept=%v reset=%v added=%v dropped=%v; want %v %v %v %v", round.Kept, round.Reset, round.Added, round.Dropped, tc.kept, tc.reset, tc.added, tc.dropped)
			}
			progress := map[string]string{}
			for _, r := range run.Reasons {
				progress[r.Name] = r.Progress()
			}
			if progress["destroys-need-two"] != tc.destroys || progress["changes-need-one"] != tc.changes {
				t.Errorf("progress %v; want destroys %q changes %q", progress, tc.destroys, tc.changes)
			}
			if run.Status != tc.status || run.Plan.SHA256 != tc.revised.SHA256 || !run.Deadline.Equal(later.Add(time.Hour)) {
				t.Errorf("status %s plan %s deadline %v; want %s, the revised plan, a fresh deadline", run.Status, run.Plan.SHA256, run.Deadline, tc.status)
			}
			if len(run.Rounds) != 2 || run.Rounds[0].EndedBy != "carol" || run.Rounds[0].EndComment != "split the NAT change" {
				t.Errorf("rounds %+v; want round 1 ended by carol's request", run.Rounds)
			}
		})
	}
}

func TestRevisePlanRules(t *testing.T) {
	run := newRun(t, prodWorkspace(destroysNeedTwo), destroyPlan())
	fresh := approval.Evaluate(prodWorkspace(destroysNeedTwo), destroyPlan(), nil, alice, directory)
	if err := run.RevisePlan(approval.Request{Actor: bob}, destroyPlan().PlanSummary, nil, fresh, t0); approval.ErrorCode(err) != approval.CodeForbidden {
		t.Errorf("bob revising alice's plan: %v; want forbidden", err)
	}
	if err := run.CheckRequestChanges(approval.Request{Actor: bob}); approval.ErrorCode(err) != approval.CodeInvalid {
		t.Errorf("request changes without comment: %v; want invalid", err)
	}
	if err := run.CheckRequestChanges(approval.Request{Actor: alice, Comment: "x"}); approval.ErrorCode(err) != approval.CodeForbidden {
		t.Errorf("requester requesting changes on her own run: %v; want forbidden", err)
	}
	// A revised plan that no rule matches is approved at once.
	empty := planWith("p-empty", updA)
	if err := run.RevisePlan(approval.Request{Actor: alice}, empty.PlanSummary, nil, approval.Evaluate(prodWorkspace(destroysNeedTwo), empty, nil, alice, directory), t0); err != nil {
		t.Fatal(err)
	}
	if run.Status != approval.StatusApproved {
		t.Errorf("status %s; want approved: the revised plan needs nothing", run.Status)
	}
}

func TestBypass(t *testing.T) {
	for _, tc := range []struct {
		name   string
		who    approval.Identity
		just   string
		allow  bool
		code   approval.Code
		status approval.Status
	}{
		{"admin with justification", erin, "prod is down", true, "", approval.StatusApproved},
		{"justification required", erin, " ", true, approval.CodeInvalid, approval.StatusPendingApproval},
		{"only admins", bob, "prod is down", true, approval.CodeForbidden, approval.StatusPendingApproval},
		{"workspace must allow it", erin, "prod is down", false, approval.CodeForbidden, approval.StatusPendingApproval},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := stagedWorkspace()
			ws.AllowBypass = tc.allow
			run := newRun(t, ws, destroyPlan())
			mustApprove(t, &run, "b", bob, t0)
			bypassed, err := run.Bypass(approval.Request{ID: "bp", Actor: tc.who, Comment: tc.just}, t0)
			if got := approval.ErrorCode(err); got != tc.code {
				t.Fatalf("code %q (%v); want %q", got, err, tc.code)
			}
			if run.Status != tc.status {
				t.Fatalf("status %s; want %s", run.Status, tc.status)
			}
			if tc.code != "" {
				return
			}
			want := []string{"step:plan-review", "rule:destroys-need-two", "rule:any-change", "step:apply-window"}
			if !slices.Equal(bypassed, want) || !run.Bypassed {
				t.Errorf("bypassed %v (run marked %v); want %v and the run marked", bypassed, run.Bypassed, want)
			}
			if st := run.Reasons[4].State; st != approval.ReasonWaiting {
				t.Errorf("sign-off %s; want still waiting after a bypass", st)
			}
			last := run.Decisions[len(run.Decisions)-1]
			if last.Kind != approval.DecisionBypass || !last.Bypassed || last.Comment != "prod is down" {
				t.Errorf("decision %+v; want a bypass with its justification", last)
			}
			if !run.Reasons[1].ApproverStates()[0].Bypassed && !slices.ContainsFunc(run.Reasons[1].ApproverStates(), func(s approval.ApproverState) bool { return s.Bypassed }) {
				t.Errorf("destroys-need-two approvers %+v; want the bypass shown", run.Reasons[1].ApproverStates())
			}
			notify := run.BypassedApprovers(bypassed)
			if !slices.Contains(notify, "bob") || !slices.Contains(notify, "dave") || !slices.Contains(notify, "sam") {
				t.Errorf("to notify %v; want every eligible approver of the bypassed reasons", notify)
			}
		})
	}
}

func TestCancelOneReasonCancelsTheRun(t *testing.T) {
	run := newRun(t, stagedWorkspace(), destroyPlan())
	if err := run.Cancel(approval.Request{ID: "c", Actor: alice, Comment: "superseded", ReasonIDs: []string{"rule:any-change"}}, t0); err != nil {
		t.Fatal(err)
	}
	for _, r := range run.Reasons {
		if r.State != approval.ReasonCancelled {
			t.Errorf("reason %s is %s; want cancelled with the run", r.ID, r.State)
		}
	}
	if run.Status != approval.StatusCancelled {
		t.Errorf("status %s; want cancelled", run.Status)
	}
	other := newRun(t, stagedWorkspace(), destroyPlan())
	if err := other.CheckCancel(approval.Request{Actor: alice, Comment: "x", ReasonIDs: []string{"rule:nope"}}); approval.ErrorCode(err) != approval.CodeInvalid {
		t.Errorf("cancel naming an unknown reason: %v; want invalid", err)
	}
}
