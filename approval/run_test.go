package approval_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func intp(i int) *int { return &i }

// The people of the tests: alice requests, bob/carol/dave approve through the
// platform group, sam through a direct listing, erin is an admin, victor a
// viewer, olga an approver no rule lists.
var (
	alice  = approval.Identity{ID: "alice", Email: "alice@example.com", Source: approval.SourceSSO, Groups: []string{"platform"}, Roles: []approval.Role{approval.RoleApprover}}
	bob    = approval.Identity{ID: "bob", Email: "bob@example.com", Source: approval.SourceSSO, Groups: []string{"platform"}, Roles: []approval.Role{approval.RoleApprover}}
	carol  = approval.Identity{ID: "carol", Email: "carol@example.com", Source: approval.SourceSSO, Groups: []string{"platform", "security"}, Roles: []approval.Role{approval.RoleApprover}}
	dave   = approval.Identity{ID: "dave", Email: "dave@example.com", Source: approval.SourceSSO, Groups: []string{"security"}, Roles: []approval.Role{approval.RoleApprover}}
	sam    = approval.Identity{ID: "sam", Email: "sam@example.com", Source: approval.SourceLocal}
	erin   = approval.Identity{ID: "erin", Email: "erin@example.com", Roles: []approval.Role{approval.RoleAdmin}}
	victor = approval.Identity{ID: "victor", Email: "victor@example.com", Groups: []string{"platform"}, Roles: []approval.Role{approval.RoleViewer}}
	olga   = approval.Identity{ID: "olga", Email: "olga@example.com", Roles: []approval.Role{approval.RoleApprover}}

	directory = []approval.Identity{alice, bob, carol, dave, sam, erin, victor, olga}
)

func destroyPlan() approval.Plan {
	return approval.Summarize("abc", []approval.Resource{
		{Address: "a.b", Type: "a", Actions: []approval.Action{approval.ActionDelete}},
		{Address: "a.c", Type: "a", Actions: []approval.Action{approval.ActionUpdate}},
	})
}

func prodWorkspace(rules ...approval.Rule) approval.Workspace {
	return approval.Workspace{Name: "prod", Environment: "production", Timing: approval.Timing{Timeout: time.Hour}, OnTimeout: approval.OutcomeReject, Rules: rules}
}

var (
	destroysNeedTwo = approval.Rule{Name: "destroys-need-two", When: approval.Conditions{DestroysGT: intp(0)}, Approvers: approval.Approvers{Groups: []string{"platform"}}, MinApprovals: 2}
	securityOne     = approval.Rule{Name: "security", Approvers: approval.Approvers{Groups: []string{"security"}}, MinApprovals: 1}
)

func newRun(t *testing.T, ws approval.Workspace, p approval.Plan) approval.Run {
	t.Helper()
	return newRunFor(ws, alice, p, nil, directory, t0)
}

func req(id string, who approval.Identity, comment string) approval.Request {
	return approval.Request{ID: id, Actor: who, Comment: comment}
}

func TestSummarizeCountsReplaceAsAddAndDestroy(t *testing.T) {
	s := approval.Summarize("x", []approval.Resource{
		{Actions: []approval.Action{approval.ActionCreate}},
		{Actions: []approval.Action{approval.ActionUpdate}},
		{Actions: []approval.Action{approval.ActionDelete}},
		{Actions: []approval.Action{approval.ActionReplace}},
	})
	if s.Adds != 2 || s.Changes != 1 || s.Destroys != 2 || s.Replaces != 1 {
		t.Errorf("got adds=%d changes=%d destroys=%d replaces=%d; want 2 1 2 1", s.Adds, s.Changes, s.Destroys, s.Replaces)
	}
}

func TestConditionsMatch(t *testing.T) {
	p := approval.PlanSummary{Adds: 3, Changes: 1, Destroys: 0}
	for _, tc := range []struct {
		name string
		c    approval.Conditions
		env  string
		want bool
	}{
		{"no conditions always match", approval.Conditions{}, "staging", true},
		{"adds over threshold", approval.Conditions{AddsGT: intp(2)}, "", true},
		{"adds equal threshold", approval.Conditions{AddsGT: intp(3)}, "", false},
		{"changes over zero", approval.Conditions{ChangesGT: intp(0)}, "", true},
		{"no destroys", approval.Conditions{DestroysGT: intp(0)}, "", false},
		{"environment matches", approval.Conditions{Environment: "production"}, "production", true},
		{"environment differs", approval.Conditions{Environment: "production"}, "staging", false},
		{"all must hold", approval.Conditions{AddsGT: intp(0), Environment: "production"}, "staging", false},
		{"all hold", approval.Conditions{AddsGT: intp(0), ChangesGT: intp(0), Environment: "production"}, "production", true},
	} {
		if got, _ := tc.c.Match(approval.Facts{Plan: approval.Plan{PlanSummary: p}, Environment: tc.env}); got != tc.want {
			t.Errorf("%s: got %v; want %v", tc.name, got, tc.want)
		}
	}
}

func TestEvaluateMakesOneReasonPerMatchingRule(t *testing.T) {
	ws := prodWorkspace(
		destroysNeedTwo,
		approval.Rule{Name: "big-adds", When: approval.Conditions{AddsGT: intp(10)}, Approvers: approval.Approvers{Users: []approval.UserID{"bob"}}, MinApprovals: 1},
		securityOne,
	)
	reasons := approval.Evaluate(ws, destroyPlan(), nil, alice, directory)
	if len(reasons) != 2 {
		t.Fatalf("got %d reasons; want 2 (big-adds does not match)", len(reasons))
	}
	r := reasons[0]
	if r.ID != "rule:destroys-need-two" || r.Kind != approval.KindRule || r.Stage != approval.StagePostPlan || r.State != approval.ReasonWaiting || r.Required != 2 {
		t.Errorf("got reason %+v; want a waiting rule reason at post_plan needing 2 (the run opens it)", r)
	}
	// alice requested, so she is not listed as an approver she could never be;
	// victor is in the group but a viewer, who never decides: nobody waits
	// for him or asks him.
	want := []approval.UserID{"bob", "carol"}
	if len(r.Eligible) != len(want) {
		t.Fatalf("eligible = %v; want %v", r.Eligible, want)
	}
	for i := range want {
		if r.Eligible[i] != want[i] {
			t.Errorf("eligible = %v; want %v", r.Eligible, want)
		}
	}
}

func TestNoMatchingRuleApprovesAtOnce(t *testing.T) {
	run := newRunFor(prodWorkspace(destroysNeedTwo), alice, approval.Plan{PlanSummary: approval.PlanSummary{Adds: 1}}, nil, nil, t0)
	if run.Status != approval.StatusApproved || len(run.Reasons) != 0 {
		t.Errorf("got status %s with %d reasons; want approved with none", run.Status, len(run.Reasons))
	}
	if !run.Deadline.IsZero() {
		t.Errorf("deadline = %v; want none for a run that does not wait", run.Deadline)
	}
}

func TestDeadlineCountsFromRequest(t *testing.T) {
	run := newRun(t, prodWorkspace(destroysNeedTwo), destroyPlan())
	if run.Status != approval.StatusPendingApproval || !run.Deadline.Equal(t0.Add(time.Hour)) {
		t.Errorf("got status %s deadline %v; want pending until %v", run.Status, run.Deadline, t0.Add(time.Hour))
	}
	ws := prodWorkspace(destroysNeedTwo)
	ws.Timing.Timeout = 0
	run = newRunFor(ws, alice, destroyPlan(), nil, nil, t0)
	if !run.Deadline.Equal(t0.Add(approval.DefaultTimeout)) {
		t.Errorf("deadline = %v; want the default 4h", run.Deadline)
	}
}

func TestRoleMatrix(t *testing.T) {
	ws := prodWorkspace(destroysNeedTwo, approval.Rule{Name: "sam-listed", Approvers: approval.Approvers{Users: []approval.UserID{"sam"}}, MinApprovals: 1})
	type check func(*approval.Run, approval.Request) error
	approve := func(r *approval.Run, q approval.Request) error { return r.CheckApprove(q) }
	reject := func(r *approval.Run, q approval.Request) error { return r.CheckReject(q) }
	cancel := func(r *approval.Run, q approval.Request) error { return r.CheckCancel(q) }
	for _, tc := range []struct {
		name    string
		do      check
		who     approval.Identity
		comment string
		want    approval.Code
		mention string
	}{
		{"group member approves", approve, bob, "", "", ""},
		{"listed user approves", approve, sam, "", "", ""},
		{"requester may not approve", approve, alice, "", approval.CodeForbidden, "self-approval"},
		{"viewer in the group may not approve", approve, victor, "", approval.CodeForbidden, "viewers"},
		{"admin not listed may not approve", approve, erin, "", approval.CodeForbidden, "admins may cancel"},
		{"approver role not listed may not approve", approve, olga, "", approval.CodeForbidden, "not an approver"},
		{"missing actor", approve, approval.Identity{}, "", approval.CodeInvalid, "actor"},
		{"group member rejects", reject, carol, "no", "", ""},
		{"reject needs a comment", reject, carol, "  ", approval.CodeInvalid, "comment"},
		{"comment is checked before eligibility", reject, victor, "", approval.CodeInvalid, "comment"},
		{"requester may not reject", reject, alice, "no", approval.CodeForbidden, "self-approval"},
		{"viewer may not reject", reject, victor, "no", approval.CodeForbidden, "viewers"},
		{"admin not listed may not reject", reject, erin, "no", approval.CodeForbidden, "admins"},
		{"requester cancels", cancel, alice, "wrong branch", "", ""},
		{"admin cancels", cancel, erin, "freeze", "", ""},
		{"approver cancels", cancel, bob, "superseded", "", ""},
		{"cancel needs a message", cancel, erin, "", approval.CodeInvalid, "message"},
		{"viewer may not cancel", cancel, victor, "x", approval.CodeForbidden, "viewers"},
		{"unlisted approver may not cancel", cancel, olga, "x", approval.CodeForbidden, "only the requester"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := newRun(t, ws, destroyPlan())
			err := tc.do(&run, req("d1", tc.who, tc.comment))
			if got := approval.ErrorCode(err); got != tc.want {
				t.Fatalf("got code %q (%v); want %q", got, err, tc.want)
			}
			if tc.mention != "" && !containsFold(err.Error(), tc.mention) {
				t.Errorf("error %q does not say %q", err, tc.mention)
			}
		})
	}
}

func TestForbiddenComesBeforeConflict(t *testing.T) {
	run := newRun(t, prodWorkspace(destroysNeedTwo), destroyPlan())
	if err := run.Reject(req("r1", bob, "no"), t0); err != nil {
		t.Fatal(err)
	}
	if got := approval.ErrorCode(run.CheckApprove(req("a", victor, ""))); got != approval.CodeForbidden {
		t.Errorf("viewer on a finished run: got %q; want forbidden (403 is checked before 409)", got)
	}
	if got := approval.ErrorCode(run.CheckApprove(req("a", carol, ""))); got != approval.CodeConflict {
		t.Errorf("eligible approver on a rejected run: got %q; want conflict", got)
	}
	if got := approval.ErrorCode(run.CheckCancel(req("c", alice, "x"))); got != approval.CodeConflict {
		t.Errorf("cancel of a rejected run: got %q; want conflict", got)
	}
}

func TestTwoApprovalsAcrossReasons(t *testing.T) {
	run := newRun(t, prodWorkspace(destroysNeedTwo, securityOne), destroyPlan())
	steps := []struct {
		who       approval.Identity
		changed   bool
		status    approval.Status
		progress0 string
		progress1 string
		decisions int
		reasonIDs int
	}{
		{bob, true, approval.StatusPendingApproval, "1/2", "0/1", 1, 1},
		{bob, false, approval.StatusPendingApproval, "1/2", "0/1", 1, 0}, // repeat: no-op
		// carol is in platform and security: one approval counts on both.
		{carol, true, approval.StatusApproved, "2/2", "1/1", 2, 2},
	}
	for i, s := range steps {
		changed, err := run.Approve(req("d"+string(rune('0'+i)), s.who, "lgtm"), t0.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if changed != s.changed || run.Status != s.status || run.Reasons[0].Progress() != s.progress0 || run.Reasons[1].Progress() != s.progress1 || len(run.Decisions) != s.decisions {
			t.Fatalf("step %d: changed=%v status=%s progress=%s,%s decisions=%d; want %v %s %s,%s %d",
				i, changed, run.Status, run.Reasons[0].Progress(), run.Reasons[1].Progress(), len(run.Decisions), s.changed, s.status, s.progress0, s.progress1, s.decisions)
		}
		if s.changed && len(run.Decisions[len(run.Decisions)-1].ReasonIDs) != s.reasonIDs {
			t.Errorf("step %d: decision counted on %v; want %d reasons", i, run.Decisions[len(run.Decisions)-1].ReasonIDs, s.reasonIDs)
		}
	}
	if run.Reasons[0].State != approval.ReasonApproved || run.Reasons[1].State != approval.ReasonApproved {
		t.Errorf("reason states %s,%s; want approved,approved", run.Reasons[0].State, run.Reasons[1].State)
	}
	if _, err := run.Approve(req("late", dave, ""), t0); approval.ErrorCode(err) != approval.CodeConflict {
		t.Errorf("approval after approved: %v; want conflict", err)
	}
}

func TestApproverStates(t *testing.T) {
	run := newRun(t, prodWorkspace(destroysNeedTwo), destroyPlan())
	if _, err := run.Approve(req("d1", carol, "ok"), t0); err != nil {
		t.Fatal(err)
	}
	states := run.Reasons[0].ApproverStates()
	got := map[approval.UserID]string{}
	for _, s := range states {
		got[s.UserID] = s.State
	}
	if got["bob"] != "pending" || got["carol"] != "approved" || len(states) != 2 {
		t.Errorf("got %v; want bob pending, carol approved, 2 rows (not the viewer)", states)
	}
	if pending := run.PendingApprovers(); len(pending) != 1 || pending[0] != "bob" {
		t.Errorf("pending approvers = %v; want [bob]", pending)
	}
}

func TestSelfApprovalAllowedByRule(t *testing.T) {
	rule := destroysNeedTwo
	rule.MinApprovals = 1
	rule.AllowSelfApproval = true
	run := newRun(t, prodWorkspace(rule), destroyPlan())
	if changed, err := run.Approve(req("d1", alice, ""), t0); err != nil || !changed || run.Status != approval.StatusApproved {
		t.Errorf("got changed=%v err=%v status=%s; want alice to approve her own run", changed, err, run.Status)
	}
}

func TestSelfApprovalBlockedOnOneReasonOnly(t *testing.T) {
	allowed := approval.Rule{Name: "self-ok", Approvers: approval.Approvers{Users: []approval.UserID{"alice"}}, MinApprovals: 1, AllowSelfApproval: true}
	run := newRun(t, prodWorkspace(destroysNeedTwo, allowed), destroyPlan())
	if _, err := run.Approve(req("d1", alice, ""), t0); err != nil {
		t.Fatal(err)
	}
	if run.Reasons[0].Progress() != "0/2" || run.Reasons[1].Progress() != "1/1" {
		t.Errorf("progress %s,%s; want alice counted only where self-approval is allowed", run.Reasons[0].Progress(), run.Reasons[1].Progress())
	}
}

func TestRejectCancelTimeoutEndTheRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(*approval.Run) error
		want approval.Status
	}{
		{"reject", func(r *approval.Run) error { return r.Reject(req("x", bob, "too risky"), t0) }, approval.StatusRejected},
		{"cancel", func(r *approval.Run) error { return r.Cancel(req("x", alice, "wrong plan"), t0) }, approval.StatusCancelled},
		{"timeout", func(r *approval.Run) error { return r.TimeOut(t0) }, approval.StatusTimedOut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := newRun(t, prodWorkspace(destroysNeedTwo), destroyPlan())
			if err := tc.do(&run); err != nil {
				t.Fatal(err)
			}
			if run.Status != tc.want || !run.Status.Final() {
				t.Errorf("status %s; want final %s", run.Status, tc.want)
			}
			if run.Reasons[0].State != approval.ReasonCancelled {
				t.Errorf("reason state %s; want cancelled", run.Reasons[0].State)
			}
		})
	}
}

func TestFinishApply(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  approval.ApplyResult
		want approval.Status
	}{
		{"exit 3", approval.ApplyResult{Executed: true, ExitCode: 3}, approval.StatusFailed},
		{"nothing to execute", approval.ApplyResult{Executed: false}, approval.StatusApplied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := newRun(t, prodWorkspace(), destroyPlan())
			if err := run.StartApply(t0); err != nil {
				t.Fatalf("start apply: %v", err)
			}
			if run.Status != approval.StatusApplying {
				t.Fatalf("status %s; want applying", run.Status)
			}
			if err := run.FinishApply(tc.res, t0); err != nil {
				t.Fatalf("finish apply: %v", err)
			}
			if run.Status != tc.want {
				t.Errorf("%s: status %s; want %s", tc.name, run.Status, tc.want)
			}
		})
	}
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
