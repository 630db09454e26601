package approval_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

func floatp(f float64) *float64 { return &f }

var awsPlan = approval.Summarize("aws", []approval.Resource{
	{Address: "aws_iam_role.ci", Type: "aws_iam_role", Provider: "registry.terraform.io/hashicorp/aws", Actions: []approval.Action{approval.ActionCreate}},
	{Address: "aws_iam_policy.ci", Type: "aws_iam_policy", Provider: "registry.terraform.io/hashicorp/aws", Actions: []approval.Action{approval.ActionUpdate}},
	{Address: "aws_nat_gateway.a", Type: "aws_nat_gateway", Provider: "registry.terraform.io/hashicorp/aws", Actions: []approval.Action{approval.ActionReplace}},
	{Address: "google_dns_record_set.www", Type: "google_dns_record_set", Provider: "registry.terraform.io/hashicorp/google", Actions: []approval.Action{approval.ActionDelete}},
})

func TestEveryCondition(t *testing.T) {
	cost := &approval.CostSummary{Currency: "USD", MonthlyCost: 1200, PastMonthlyCost: 600, MonthlyCostDelta: 600}
	facts := approval.Facts{Plan: awsPlan, Cost: cost, Environment: "production", Tags: []string{"pci", "network"}}
	for _, tc := range []struct {
		name string
		c    approval.Conditions
		want bool
	}{
		{"adds over", approval.Conditions{AddsGT: intp(1)}, true}, // create + replace
		{"adds not over", approval.Conditions{AddsGT: intp(2)}, false},
		{"changes", approval.Conditions{ChangesGT: intp(0)}, true},
		{"destroys", approval.Conditions{DestroysGT: intp(1)}, true}, // delete + replace
		{"replaces over zero", approval.Conditions{ReplacesGT: intp(0)}, true},
		{"replaces not over one", approval.Conditions{ReplacesGT: intp(1)}, false},
		{"resources over three", approval.Conditions{ResourcesGT: intp(3)}, true},
		{"resources not over four", approval.Conditions{ResourcesGT: intp(4)}, false},
		{"any of the actions", approval.Conditions{Actions: []approval.Action{approval.ActionDelete}}, true},
		{"none of the actions", approval.Conditions{Actions: []approval.Action{"read"}}, false},
		{"type glob", approval.Conditions{ResourceTypes: []string{"aws_iam_*"}}, true},
		{"type glob no match", approval.Conditions{ResourceTypes: []string{"aws_kms_*"}}, false},
		{"type ? glob", approval.Conditions{ResourceTypes: []string{"aws_nat_gatewa?"}}, true},
		{"exact type", approval.Conditions{ResourceTypes: []string{"aws_iam"}}, false},
		{"provider glob across slashes", approval.Conditions{Providers: []string{"*/hashicorp/google"}}, true},
		{"provider exact", approval.Conditions{Providers: []string{"registry.terraform.io/hashicorp/aws"}}, true},
		{"provider no match", approval.Conditions{Providers: []string{"registry.terraform.io/hashicorp/azurerm"}}, false},
		{"type and action on the same resource", approval.Conditions{ResourceTypes: []string{"aws_iam_*"}, Actions: []approval.Action{approval.ActionDelete}}, false},
		{"type and action together", approval.Conditions{ResourceTypes: []string{"aws_iam_*"}, Actions: []approval.Action{approval.ActionCreate}}, true},
		{"environment", approval.Conditions{Environment: "production"}, true},
		{"other environment", approval.Conditions{Environment: "staging"}, false},
		{"any tag", approval.Conditions{Tags: []string{"sox", "pci"}}, true},
		{"no tag", approval.Conditions{Tags: []string{"sox"}}, false},
		{"cost delta over", approval.Conditions{MonthlyCostDeltaGT: floatp(500)}, true},
		{"cost delta not over", approval.Conditions{MonthlyCostDeltaGT: floatp(600)}, false},
		{"total cost over", approval.Conditions{MonthlyCostGT: floatp(1000)}, true},
		{"total cost not over", approval.Conditions{MonthlyCostGT: floatp(5000)}, false},
		{"all must hold", approval.Conditions{ResourceTypes: []string{"aws_iam_*"}, MonthlyCostDeltaGT: floatp(5000)}, false},
	} {
		got, note := tc.c.Match(facts)
		if got != tc.want || note != "" {
			t.Errorf("%s: got %v %q; want %v", tc.name, got, note, tc.want)
		}
	}
}

func TestMissingCostFailsClosed(t *testing.T) {
	ok, note := approval.Conditions{MonthlyCostDeltaGT: floatp(500)}.Match(approval.Facts{Plan: awsPlan})
	if !ok || !strings.Contains(note, "no cost estimate") {
		t.Errorf("got %v %q; want a match that says no estimate was submitted", ok, note)
	}
	// Other conditions still decide first.
	if ok, _ := (approval.Conditions{MonthlyCostDeltaGT: floatp(500), Environment: "staging"}).Match(approval.Facts{Plan: awsPlan, Environment: "production"}); ok {
		t.Error("a cost rule for staging matched a production plan")
	}
	// The note reaches the reason.
	ws := prodWorkspace(approval.Rule{Name: "finance", When: approval.Conditions{MonthlyCostDeltaGT: floatp(500)}, Approvers: approval.Approvers{Users: []approval.UserID{"sam"}}, MinApprovals: 1})
	reasons := approval.Evaluate(ws, awsPlan, nil, alice, directory)
	if len(reasons) != 1 || !strings.Contains(reasons[0].Note, "fail closed") {
		t.Errorf("reasons %+v; want the finance reason with its note", reasons)
	}
}

func TestCostTiers(t *testing.T) {
	// > $500/month adds Finance; > $5,000 adds a director as well.
	ws := prodWorkspace(
		approval.Rule{Name: "finance-over-500", When: approval.Conditions{MonthlyCostDeltaGT: floatp(500)}, Approvers: approval.Approvers{Groups: []string{"security"}}, MinApprovals: 1},
		approval.Rule{Name: "director-over-5000", When: approval.Conditions{MonthlyCostDeltaGT: floatp(5000)}, Approvers: approval.Approvers{Users: []approval.UserID{"olga"}}, MinApprovals: 1},
	)
	for _, tc := range []struct {
		delta float64
		want  []string
	}{{120, nil}, {800, []string{"rule:finance-over-500"}}, {7200, []string{"rule:finance-over-500", "rule:director-over-5000"}}} {
		cost := &approval.CostSummary{Currency: "USD", MonthlyCostDelta: tc.delta}
		if got := ids(approval.Evaluate(ws, awsPlan, cost, alice, directory)); !slices.Equal(got, tc.want) {
			t.Errorf("delta %v: reasons %v; want %v", tc.delta, got, tc.want)
		}
	}
}

func TestQuorumAcrossGroups(t *testing.T) {
	// Any 3 of platform ∪ security (bob, carol, dave, victor the viewer).
	rule := approval.Rule{Name: "quorum", Approvers: approval.Approvers{Groups: []string{"platform", "security"}}, MinApprovals: 3}
	run := newRun(t, prodWorkspace(rule), destroyPlan())
	mustApprove(t, &run, "1", bob, t0)
	mustApprove(t, &run, "2", carol, t0) // in both groups: counts once
	if run.Reasons[0].Progress() != "2/3" {
		t.Fatalf("progress %s; want 2/3", run.Reasons[0].Progress())
	}
	mustApprove(t, &run, "3", dave, t0)
	if run.Status != approval.StatusApproved {
		t.Errorf("status %s; want approved by three people across two groups", run.Status)
	}
}

func TestInputsFollowSelectedResources(t *testing.T) {
	iam := approval.Rule{Name: "iam", When: approval.Conditions{ResourceTypes: []string{"aws_iam_*"}}, Approvers: approval.Approvers{Users: []approval.UserID{"sam"}}, MinApprovals: 1}
	ws := prodWorkspace(iam)
	a := approval.Evaluate(ws, awsPlan, nil, alice, directory)[0].Inputs
	// The DNS record changes; the IAM resources do not: same inputs.
	other := approval.Summarize("aws2", append(slices.Clone(awsPlan.ResourceChanges[:3]),
		approval.Resource{Address: "google_dns_record_set.www", Type: "google_dns_record_set", Actions: []approval.Action{approval.ActionUpdate}}))
	if b := approval.Evaluate(ws, other, nil, alice, directory)[0].Inputs; a != b {
		t.Error("inputs changed though the IAM resources did not")
	}
	moreIAM := approval.Summarize("aws3", append(slices.Clone(awsPlan.ResourceChanges),
		approval.Resource{Address: "aws_iam_user.x", Type: "aws_iam_user", Actions: []approval.Action{approval.ActionCreate}}))
	if c := approval.Evaluate(ws, moreIAM, nil, alice, directory)[0].Inputs; a == c {
		t.Error("inputs unchanged though an IAM resource was added")
	}
}

func TestPolicyDecidesBeforeAnyoneIsAsked(t *testing.T) {
	ws := prodWorkspace(destroysNeedTwo)
	ws.Policies = []string{"policies/production.rego"}
	newPolicyRun := func() approval.Run {
		return newRunFor(ws, alice, destroyPlan(), nil, directory, t0)
	}
	run := newPolicyRun()
	if run.Status != approval.StatusEvaluatingPolicy || len(run.OpenReasons()) != 0 {
		t.Fatalf("status %s open %v; want evaluating_policy with nothing open", run.Status, run.OpenReasons())
	}
	if err := run.CheckApprove(approval.Request{Actor: bob}); approval.ErrorCode(err) != approval.CodeConflict {
		t.Errorf("approve while policies run: %v; want conflict", err)
	}
	if err := run.CheckCancel(approval.Request{Actor: alice, Comment: "x"}); err != nil {
		t.Errorf("cancel while policies run: %v; want allowed", err)
	}

	for _, tc := range []struct {
		name   string
		res    approval.PolicyResult
		status approval.Status
		ids    []string
	}{
		{"deny", approval.PolicyResult{Denials: []string{"deleting aws_kms_key.main is not allowed"}}, approval.StatusPolicyFailed, nil},
		{"error fails closed", approval.PolicyResult{Error: "policy.rego:3: rego_parse_error"}, approval.StatusPolicyFailed, nil},
		{"invalid requirement fails closed", approval.PolicyResult{Requirements: []approval.PolicyRequirement{{Name: "x"}}}, approval.StatusPolicyFailed, nil},
		{"warn only", approval.PolicyResult{Warnings: []string{"4 replaces"}}, approval.StatusPendingApproval, []string{"rule:destroys-need-two"}},
		{"require approval", approval.PolicyResult{Requirements: []approval.PolicyRequirement{
			{Name: "iam-review", Approvers: approval.Approvers{Groups: []string{"security"}}, MinApprovals: 1},
			{Name: "late", Approvers: approval.Approvers{Users: []approval.UserID{"sam"}}, MinApprovals: 1, Stage: approval.StagePreApply},
		}}, approval.StatusPendingApproval, []string{"policy:iam-review", "rule:destroys-need-two", "policy:late"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := newPolicyRun()
			fresh := approval.PolicyReasons(ws, run.Plan, tc.res, alice, directory)
			if err := run.ApplyPolicy(tc.res, fresh, t0.Add(time.Second)); err != nil {
				t.Fatalf("apply policy: %v", err)
			}
			if run.Status != tc.status || !slices.Equal(ids(run.Reasons[:len(tc.ids)]), tc.ids) {
				t.Errorf("status %s reasons %v; want %s %v", run.Status, ids(run.Reasons), tc.status, tc.ids)
			}
			if run.Policy == nil || run.Policy.PlanSHA256 != run.Plan.SHA256 {
				t.Errorf("policy result %+v; want it recorded against the plan", run.Policy)
			}
			if tc.status == approval.StatusPolicyFailed && len(run.OpenReasons()) != 0 {
				t.Errorf("open reasons %v on a failed run", run.OpenReasons())
			}
		})
	}
}

func TestRevisedPlanReEvaluatesPolicy(t *testing.T) {
	ws := prodWorkspace(destroysNeedTwo)
	ws.Policies = []string{"p.rego"}
	run := newRunFor(ws, alice, destroyPlan(), nil, directory, t0)
	res := approval.PolicyResult{Requirements: []approval.PolicyRequirement{{Name: "review", Approvers: approval.Approvers{Groups: []string{"security"}}, MinApprovals: 1}}}
	if err := run.ApplyPolicy(res, approval.PolicyReasons(ws, run.Plan, res, alice, directory), t0); err != nil {
		t.Fatalf("apply policy: %v", err)
	}
	mustApprove(t, &run, "d", dave, t0)
	if err := run.RequestChanges(approval.Request{ID: "rc", Actor: bob, Comment: "again"}, t0); err != nil {
		t.Fatal(err)
	}
	// The identical plan again: the policy reason keeps dave's approval.
	if err := run.RevisePlan(approval.Request{ID: "rp", Actor: alice}, destroyPlan().PlanSummary, nil, approval.Evaluate(ws, destroyPlan(), nil, alice, directory), t0); err != nil {
		t.Fatal(err)
	}
	if run.Status != approval.StatusEvaluatingPolicy {
		t.Fatalf("status %s; want the policies evaluated again", run.Status)
	}
	if err := run.ApplyPolicy(res, approval.PolicyReasons(ws, run.Plan, res, alice, directory), t0); err != nil {
		t.Fatalf("apply policy: %v", err)
	}
	reason := run.Reasons[slices.IndexFunc(run.Reasons, func(r approval.Reason) bool { return r.ID == "policy:review" })]
	if reason.State != approval.ReasonApproved || !slices.Contains(run.Rounds[1].Kept, "policy:review") {
		t.Errorf("policy reason %s, round %+v; want it kept approved", reason.State, run.Rounds[1])
	}
}
