package approval_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

func acts(a ...approval.Action) []approval.Action { return a }

func TestSummarizeCountsEveryAction(t *testing.T) {
	const (
		create  = approval.ActionCreate
		update  = approval.ActionUpdate
		del     = approval.ActionDelete
		replace = approval.ActionReplace
		forget  = approval.ActionForget
		imp     = approval.ActionImport
		move    = approval.ActionMove
		invoke  = approval.ActionInvoke
	)
	for _, tc := range []struct {
		name    string
		changes [][]approval.Action
		want    approval.PlanSummary // SHA256 and ChangesDigest aside
	}{
		{"nothing", nil, approval.PlanSummary{}},
		{"forget", [][]approval.Action{acts(forget)}, approval.PlanSummary{Forgets: 1, ResourceCount: 1}},
		// A replace whose old object is forgotten, not destroyed: an add.
		{"create and forget counts an add", [][]approval.Action{acts(create, forget)}, approval.PlanSummary{Adds: 1, Forgets: 1, ResourceCount: 1}},
		{"import", [][]approval.Action{acts(imp)}, approval.PlanSummary{Imports: 1, ResourceCount: 1}},
		{"import with an update", [][]approval.Action{acts(imp, update)}, approval.PlanSummary{Imports: 1, Changes: 1, ResourceCount: 1}},
		{"move", [][]approval.Action{acts(move)}, approval.PlanSummary{Moves: 1, ResourceCount: 1}},
		{"move with an update", [][]approval.Action{acts(move, update)}, approval.PlanSummary{Moves: 1, Changes: 1, ResourceCount: 1}},
		{"invoke", [][]approval.Action{acts(invoke), acts(invoke)}, approval.PlanSummary{Invocations: 2, ResourceCount: 2}},
		{"everything", [][]approval.Action{acts(create), acts(update), acts(del), acts(replace), acts(forget), acts(imp), acts(move), acts(invoke)},
			approval.PlanSummary{Adds: 2, Changes: 1, Destroys: 2, Replaces: 1, Forgets: 1, Imports: 1, Moves: 1, Invocations: 1, ResourceCount: 8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var changes []approval.Resource
			for i, a := range tc.changes {
				changes = append(changes, approval.Resource{Address: "x.r" + string(rune('a'+i)), Type: "x", Actions: a})
			}
			p := approval.Summarize("sha", changes)
			got := p.PlanSummary
			if got.SHA256 != "sha" || got.ChangesDigest == "" {
				t.Errorf("got sha %q digest %q; want sha and a digest", got.SHA256, got.ChangesDigest)
			}
			got.SHA256, got.ChangesDigest = "", ""
			if got != tc.want {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
			if p.ResourceChanges == nil || len(p.ResourceChanges) != len(changes) {
				t.Errorf("got resource changes %v; want the %d changes, never nil", p.ResourceChanges, len(changes))
			}
		})
	}
}

func TestChangesDigest(t *testing.T) {
	a := approval.Resource{Address: "aws_iam_policy.ci", Type: "aws_iam_policy", Actions: acts(approval.ActionUpdate), Digest: "d1"}
	b := approval.Resource{Address: "aws_vpc.main", Type: "aws_vpc", Actions: acts(approval.ActionCreate), Digest: "v1"}
	otherText := a
	otherText.Digest = "d2"
	base := approval.Summarize("p1", []approval.Resource{a, b}).ChangesDigest
	for _, tc := range []struct {
		name    string
		changes []approval.Resource
		same    bool
	}{
		{"same changes, other plan bytes", []approval.Resource{a, b}, true},
		{"same changes in another order", []approval.Resource{b, a}, true},
		{"same address and action, other values", []approval.Resource{otherText, b}, false},
		{"a change fewer", []approval.Resource{a}, false},
	} {
		got := approval.Summarize("p2", tc.changes).ChangesDigest
		if (got == base) != tc.same {
			t.Errorf("%s: got digest %s against %s; want same=%v", tc.name, got, base, tc.same)
		}
	}
}

// Issue #9: an approval covers the values of the changes it was given for.
// Before, a reason's inputs were actions and addresses only, so a revised
// plan that rewrote an IAM policy's text under the same address kept the
// approval of the old text.
func TestRevisedPlanFollowsChangeDigests(t *testing.T) {
	iamRule := approval.Rule{Name: "iam", When: approval.Conditions{ResourceTypes: []string{"aws_iam_*"}}, Approvers: approval.Approvers{Users: []approval.UserID{"sam"}}, MinApprovals: 1}
	natRule := approval.Rule{Name: "replaces", When: approval.Conditions{ReplacesGT: intp(0)}, Approvers: approval.Approvers{Groups: []string{"security"}}, MinApprovals: 1}
	ws := prodWorkspace(iamRule, natRule)
	// A whole-plan step nobody completes, so the run stays open for a
	// revised plan.
	ws.Steps = []approval.Step{{Name: "review", Stage: approval.StagePostPlan, Approvers: approval.Approvers{Users: []approval.UserID{"olga"}}, MinApprovals: 2}}
	policy := approval.Resource{Address: "aws_iam_policy.ci", Type: "aws_iam_policy", Actions: acts(approval.ActionUpdate), Digest: "policy-v1"}
	nat := approval.Resource{Address: "aws_nat_gateway.a", Type: "aws_nat_gateway", Actions: acts(approval.ActionReplace), Digest: "nat-v1"}
	with := func(r approval.Resource, digest string) approval.Resource { r.Digest = digest; return r }
	for _, tc := range []struct {
		name             string
		revised          approval.Plan
		kept, reset      []string
		iam, nat, review string
	}{
		{"identical digests keep every approval", approval.Summarize("p2", []approval.Resource{policy, nat}),
			[]string{"step:review", "rule:iam", "rule:replaces"}, nil, "1/1", "1/1", "1/2"},
		{"other IAM policy text resets the IAM reason", approval.Summarize("p2", []approval.Resource{with(policy, "policy-v2"), nat}),
			// replaces never selected the IAM policy: it keeps carol's approval.
			[]string{"rule:replaces"}, []string{"step:review", "rule:iam"}, "0/1", "1/1", "0/2"},
		{"other NAT values reset the replace reason only", approval.Summarize("p2", []approval.Resource{policy, with(nat, "nat-v2")}),
			[]string{"rule:iam"}, []string{"step:review", "rule:replaces"}, "1/1", "0/1", "0/2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := newRun(t, ws, approval.Summarize("p1", []approval.Resource{policy, nat}))
			mustApprove(t, &run, "s", sam, t0, "rule:iam")
			mustApprove(t, &run, "c", carol, t0, "rule:replaces")
			mustApprove(t, &run, "o", olga, t0, "step:review")
			if run.Status != approval.StatusPendingApproval {
				t.Fatalf("got status %s; want pending_approval (the review needs two)", run.Status)
			}
			fresh := approval.Evaluate(ws, tc.revised, nil, alice, directory)
			if err := run.RevisePlan(req("rp", alice, "new policy text"), tc.revised.PlanSummary, nil, fresh, t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			round := run.Rounds[1]
			if !slices.Equal(round.Kept, tc.kept) || !slices.Equal(round.Reset, tc.reset) {
				t.Errorf("got kept %v reset %v; want %v %v", round.Kept, round.Reset, tc.kept, tc.reset)
			}
			progress := map[string]string{}
			for _, r := range run.Reasons {
				progress[r.ID] = r.Progress()
			}
			if progress["rule:iam"] != tc.iam || progress["rule:replaces"] != tc.nat || progress["step:review"] != tc.review {
				t.Errorf("got progress %v; want iam %s replaces %s review %s", progress, tc.iam, tc.nat, tc.review)
			}
		})
	}
}

func TestRevisedPlanPolicyReasonFollowsChangesDigest(t *testing.T) {
	ws := prodWorkspace()
	ws.Policies = []string{"policies/iam.rego"}
	res := approval.PolicyResult{Requirements: []approval.PolicyRequirement{{Name: "iam-review", Approvers: approval.Approvers{Groups: []string{"security"}}, MinApprovals: 2}}}
	first := approval.Summarize("p1", []approval.Resource{{Address: "aws_iam_policy.ci", Type: "aws_iam_policy", Actions: acts(approval.ActionUpdate), Digest: "policy-v1"}})
	for _, tc := range []struct {
		name     string
		digest   string
		progress string
		kept     bool
	}{
		{"same text keeps dave's approval", "policy-v1", "1/2", true},
		{"other text resets it", "policy-v2", "0/2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := newRunFor(ws, alice, first, nil, directory, t0)
			if err := run.ApplyPolicy(res, approval.PolicyReasons(ws, run.Plan, res, alice, directory), t0); err != nil {
				t.Fatal(err)
			}
			mustApprove(t, &run, "d", dave, t0) // 1/2
			if err := run.RequestChanges(req("rc", carol, "tighten it"), t0); err != nil {
				t.Fatal(err)
			}
			revised := approval.Summarize("p2", []approval.Resource{{Address: "aws_iam_policy.ci", Type: "aws_iam_policy", Actions: acts(approval.ActionUpdate), Digest: tc.digest}})
			if err := run.RevisePlan(req("rp", alice, ""), revised.PlanSummary, nil, approval.Evaluate(ws, revised, nil, alice, directory), t0); err != nil {
				t.Fatal(err)
			}
			if err := run.ApplyPolicy(res, approval.PolicyReasons(ws, run.Plan, res, alice, directory), t0); err != nil {
				t.Fatal(err)
			}
			reason := run.Reasons[0]
			if reason.ID != "policy:iam-review" || reason.Progress() != tc.progress || slices.Contains(run.Rounds[1].Kept, reason.ID) != tc.kept {
				t.Errorf("got %s %s, round %+v; want %s, kept=%v", reason.ID, reason.Progress(), run.Rounds[1], tc.progress, tc.kept)
			}
		})
	}
}

// PolicyReasons has only the summary: when it carries no ChangesDigest (a
// summary not made by Summarize, or state from before the field existed),
// every policy reason gets empty Inputs, and ApplyPolicy's equality keeps
// the approvals whatever the revised plan changes.
func TestPolicyReasonWithoutChangesDigestResets(t *testing.T) {
	ws := prodWorkspace()
	ws.Policies = []string{"policies/iam.rego"}
	res := approval.PolicyResult{Requirements: []approval.PolicyRequirement{{Name: "iam-review", Approvers: approval.Approvers{Groups: []string{"security"}}, MinApprovals: 2}}}
	first := approval.Plan{PlanSummary: approval.PlanSummary{SHA256: "p1", Changes: 1, ResourceCount: 1}}
	run := newRunFor(ws, alice, first, nil, directory, t0)
	if err := run.ApplyPolicy(res, approval.PolicyReasons(ws, run.Plan, res, alice, directory), t0); err != nil {
		t.Fatal(err)
	}
	mustApprove(t, &run, "d", dave, t0) // 1/2
	if err := run.RequestChanges(req("rc", carol, "tighten it"), t0); err != nil {
		t.Fatal(err)
	}
	revised := approval.Plan{PlanSummary: approval.PlanSummary{SHA256: "p2", Destroys: 40, ResourceCount: 40}}
	if err := run.RevisePlan(req("rp", alice, ""), revised.PlanSummary, nil, approval.Evaluate(ws, revised, nil, alice, directory), t0); err != nil {
		t.Fatal(err)
	}
	if err := run.ApplyPolicy(res, approval.PolicyReasons(ws, run.Plan, res, alice, directory), t0); err != nil {
		t.Fatal(err)
	}
	if got := run.Reasons[0].Progress(); got != "0/2" || !slices.Contains(run.Rounds[1].Reset, "policy:iam-review") {
		t.Errorf("got policy reason %s, round %+v, on a plan nobody reviewed; want 0/2, reset", got, run.Rounds[1])
	}
}

func TestFailedCostEstimateFailsClosed(t *testing.T) {
	failed := &approval.CostSummary{Failed: true, Problems: []string{"project prod: authentication failed"}}
	cheap := &approval.CostSummary{Currency: "USD", MonthlyCost: 10, MonthlyCostDelta: 5}
	for _, tc := range []struct {
		name string
		c    approval.Conditions
		cost *approval.CostSummary
		env  string
		ok   bool
		note []string // each must be in the note; none means no note
	}{
		// Before, a failed estimate read as $0 and this rule did not match.
		{"delta rule, failed estimate", approval.Conditions{MonthlyCostDeltaGT: floatp(500)}, failed, "production", true,
			[]string{"cost estimate failed", "project prod: authentication failed", "fail closed"}},
		{"total rule, failed estimate", approval.Conditions{MonthlyCostGT: floatp(1000)}, failed, "production", true,
			[]string{"cost estimate failed", "fail closed"}},
		{"failed with no problems listed", approval.Conditions{MonthlyCostGT: floatp(1000)}, &approval.CostSummary{Failed: true}, "production", true,
			[]string{"cost estimate failed"}},
		{"no estimate", approval.Conditions{MonthlyCostDeltaGT: floatp(500)}, nil, "production", true, []string{"no cost estimate"}},
		{"usable estimate under the limit", approval.Conditions{MonthlyCostDeltaGT: floatp(500)}, cheap, "production", false, nil},
		{"other conditions still decide first", approval.Conditions{MonthlyCostDeltaGT: floatp(500), Environment: "staging"}, failed, "production", false, nil},
		{"no cost condition ignores the failure", approval.Conditions{Environment: "production"}, failed, "production", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, note := tc.c.Match(approval.Facts{Plan: awsPlan, Cost: tc.cost, Environment: tc.env})
			if ok != tc.ok {
				t.Errorf("got match %v (%q); want %v", ok, note, tc.ok)
			}
			if len(tc.note) == 0 && note != "" {
				t.Errorf("got note %q; want none", note)
			}
			for _, want := range tc.note {
				if !strings.Contains(note, want) {
					t.Errorf("got note %q; want it to say %q", note, want)
				}
			}
		})
	}
	t.Run("the note reaches the reason", func(t *testing.T) {
		ws := prodWorkspace(approval.Rule{Name: "finance", When: approval.Conditions{MonthlyCostDeltaGT: floatp(500)}, Approvers: approval.Approvers{Users: []approval.UserID{"sam"}}, MinApprovals: 1})
		reasons := approval.Evaluate(ws, awsPlan, failed, alice, directory)
		if len(reasons) != 1 || !strings.Contains(reasons[0].Note, "cost estimate failed") {
			t.Fatalf("got reasons %+v; want the finance reason noting the failed estimate", reasons)
		}
		// A failed estimate is an input of its own: an estimate that
		// works later is a change the approvers have not seen.
		none := approval.Evaluate(ws, awsPlan, nil, alice, directory)[0].Inputs
		if reasons[0].Inputs == none {
			t.Errorf("got the same inputs for a failed estimate and none; want them told apart")
		}
	})
}

func TestCostSummaryUsable(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    *approval.CostSummary
		want bool
	}{
		{"none submitted", nil, false},
		{"failed", &approval.CostSummary{Failed: true, Problems: []string{"x"}}, false},
		{"an estimate", &approval.CostSummary{Currency: "USD", MonthlyCostDelta: 12}, true},
		{"an estimate of zero", &approval.CostSummary{Currency: "USD"}, true},
	} {
		if got := tc.c.Usable(); got != tc.want {
			t.Errorf("%s: got Usable() %v; want %v", tc.name, got, tc.want)
		}
	}
}
