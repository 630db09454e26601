package workflows_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

var (
	dave = approval.Identity{ID: "dave", Email: "dave@example.com", Groups: []string{"security"}, Roles: []approval.Role{approval.RoleApprover}}
	erin = approval.Identity{ID: "erin", Email: "erin@example.com", Roles: []approval.Role{approval.RoleAdmin}}
)

// stagedInput has a post_plan rule, a pre_apply step and a post_apply
// sign-off.
func stagedInput() draft {
	in := input(destroysNeedTwo)
	in.Directory = append(in.Directory, dave, erin)
	in.Workspace.AllowBypass = true
	in.Workspace.Steps = []approval.Step{
		{Name: "apply-window", Stage: approval.StagePreApply, Approvers: approval.Approvers{Users: []approval.UserID{"dave"}}, MinApprovals: 1},
		{Name: "security-signoff", Stage: approval.StagePostApply, Approvers: approval.Approvers{Groups: []string{"security"}}, MinApprovals: 1},
	}
	return in
}

func (h *harness) eventsOf(kind activities.EventKind) []activities.Event {
	var out []activities.Event
	for _, e := range h.events {
		if e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func TestSequentialStagesAndSignoff(t *testing.T) {
	h := newHarness(t)
	early := h.update(time.Minute, workflows.UpdateApprove, "early", approval.Request{Actor: dave})
	h.update(2*time.Minute, workflows.UpdateApprove, "b", approval.Request{Actor: bob})
	h.update(3*time.Minute, workflows.UpdateApprove, "c", approval.Request{Actor: carol})
	// apply-window opened at minute 3; dave approves it; apply runs; then the
	// sign-off opens and dave signs off.
	window := h.update(4*time.Minute, workflows.UpdateApprove, "d", approval.Request{Actor: dave})
	signoff := h.update(5*time.Minute, workflows.UpdateApprove, "s", approval.Request{Actor: dave})
	got := h.run(stagedInput())

	if errType(early.err) != string(approval.CodeForbidden) {
		t.Errorf("dave before his stage opened: %v; want forbidden", early.err)
	}
	if window.err != nil || window.res.Status != approval.StatusApproved {
		t.Errorf("pre_apply approval: %v %s; want approved", window.err, window.res.Status)
	}
	if signoff.err != nil || signoff.res.Status != approval.StatusApplied {
		t.Errorf("sign-off: %v %s; want applied", signoff.err, signoff.res.Status)
	}
	if got.Status != approval.StatusApplied || len(h.applies) != 1 {
		t.Fatalf("status %s with %d applies; want applied once", got.Status, len(h.applies))
	}
	// Each stage asked its own approvers when it opened.
	var asked [][]string
	for _, e := range h.eventsOf(activities.EventApprovalRequested) {
		asked = append(asked, e.Reasons)
	}
	want := [][]string{{"rule:destroys-need-two"}, {"step:apply-window"}, {"step:security-signoff"}}
	if !slices.EqualFunc(asked, want, slices.Equal) {
		t.Errorf("approval requests %v; want %v", asked, want)
	}
}

func TestSignoffTimesOutAfterApply(t *testing.T) {
	h := newHarness(t)
	h.update(time.Minute, workflows.UpdateApprove, "b", approval.Request{Actor: bob})
	h.update(2*time.Minute, workflows.UpdateApprove, "c", approval.Request{Actor: carol})
	h.update(3*time.Minute, workflows.UpdateApprove, "d", approval.Request{Actor: dave})
	got := h.run(stagedInput())
	if got.Status != approval.StatusTimedOut || got.Apply == nil || !got.Apply.Executed || len(h.applies) != 1 {
		t.Errorf("status %s apply %+v; want timed_out with the apply recorded once", got.Status, got.Apply)
	}
}

func TestRevokeInWorkflow(t *testing.T) {
	h := newHarness(t)
	h.update(time.Minute, workflows.UpdateApprove, "b", approval.Request{Actor: bob})
	rv := h.update(2*time.Minute, workflows.UpdateRevoke, "rv", approval.Request{Actor: bob, Comment: "wrong account"})
	h.update(3*time.Minute, workflows.UpdateApprove, "c", approval.Request{Actor: carol})
	h.update(4*time.Minute, workflows.UpdateCancel, "x", approval.Request{Actor: alice, Comment: "stop"})
	got := h.run(input(destroysNeedTwo))
	if rv.err != nil || rv.run.Reasons[0].Progress() != "0/2" {
		t.Errorf("revoke: %v %s; want 0/2", rv.err, rv.run.Reasons[0].Progress())
	}
	if got.Status != approval.StatusCancelled || got.Reasons[0].Progress() != "1/2" || len(h.applies) != 0 {
		t.Errorf("status %s progress %s applies %d; want cancelled at 1/2 (bob's approval revoked), no apply", got.Status, got.Reasons[0].Progress(), len(h.applies))
	}
}

func TestRequestChangesRoundTrip(t *testing.T) {
	h := newHarness(t)
	in := input(destroysNeedTwo)
	revised := approval.Summarize("5e3d", []approval.Resource{
		{Address: "aws_nat_gateway.main", Type: "aws_nat_gateway", Actions: []approval.Action{approval.ActionReplace}},
		{Address: "aws_vpc.main", Type: "aws_vpc", Actions: []approval.Action{approval.ActionUpdate}},
	})
	h.update(time.Minute, workflows.UpdateApprove, "b", approval.Request{Actor: bob})
	rc := h.update(2*time.Minute, workflows.UpdateRequestChanges, "rc", approval.Request{Actor: carol, Comment: "tag the VPC too"})
	early := h.update(3*time.Minute, workflows.UpdateApprove, "too-early", approval.Request{Actor: carol})
	rp := h.update(4*time.Minute, workflows.UpdateRevisePlan, "rp", in.revise(alice, revised))
	h.update(5*time.Minute, workflows.UpdateApprove, "c2", approval.Request{Actor: carol})
	got := h.run(in)

	if rc.err != nil || rc.res.Status != approval.StatusChangesRequested {
		t.Fatalf("request changes: %v %s; want changes_requested", rc.err, rc.res.Status)
	}
	if errType(early.err) != string(approval.CodeConflict) {
		t.Errorf("approval while changes are requested: %v; want conflict", early.err)
	}
	if rp.err != nil || rp.res.Status != approval.StatusPendingApproval || rp.run.Reasons[0].Progress() != "1/2" {
		t.Fatalf("revised plan: %v %s %s; want pending with bob's approval kept (same destroys)", rp.err, rp.res.Status, rp.run.Reasons[0].Progress())
	}
	if got.Status != approval.StatusApplied || len(h.applies) != 1 || h.applies[0].PlanSHA256 != "5e3d" {
		t.Fatalf("status %s applies %+v; want the revised plan applied once", got.Status, h.applies)
	}
	if len(got.Rounds) != 2 || got.Rounds[0].EndedBy != "carol" || !slices.Equal(got.Rounds[1].Kept, []string{"rule:destroys-need-two"}) {
		t.Errorf("rounds %+v; want two, the first ended by carol, destroys kept", got.Rounds)
	}
	if n := len(h.eventsOf(activities.EventChangesRequested)); n != 1 {
		t.Errorf("%d changes_requested notices; want 1 to the requester", n)
	}
}

func TestBypassAppliesAndNotifies(t *testing.T) {
	h := newHarness(t)
	bp := h.update(time.Minute, workflows.UpdateBypass, "bp", approval.Request{Actor: erin, Comment: "prod down, INC-42"})
	h.update(2*time.Minute, workflows.UpdateApprove, "s", approval.Request{Actor: dave})
	got := h.run(stagedInput())
	if bp.err != nil || !bp.run.Bypassed {
		t.Fatalf("bypass: %v, bypassed=%v", bp.err, bp.run.Bypassed)
	}
	if got.Status != approval.StatusApplied || len(h.applies) != 1 {
		t.Fatalf("status %s, %d applies; want applied once", got.Status, len(h.applies))
	}
	notices := h.eventsOf(activities.EventBypassed)
	if len(notices) != 1 || !slices.Contains(notices[0].Recipients, "bob") || !slices.Contains(notices[0].Recipients, "dave") || notices[0].Comment != "prod down, INC-42" {
		t.Errorf("bypass notices %+v; want one to the bypassed approvers with the justification", notices)
	}
}

// policyOutcome is what EvaluatePolicies answers for the draft's run: the
// result, and its requirements as reasons expanded against the worker's
// directory.
func policyOutcome(d draft, res approval.PolicyResult) activities.PolicyOutcome {
	return activities.PolicyOutcome{
		Result:  res,
		Reasons: approval.PolicyReasons(d.Workspace, d.Plan.PlanSummary, res, d.RequestedBy, d.Directory),
	}
}

func TestPolicyStep(t *testing.T) {
	for _, tc := range []struct {
		name    string
		result  approval.PolicyResult
		err     error
		status  approval.Status
		applies int
	}{
		{"denial fails the run before approval", approval.PolicyResult{Denials: []string{"no KMS deletes"}}, nil, approval.StatusPolicyFailed, 0},
		{"an activity failure fails closed", approval.PolicyResult{}, errors.New("policy store unreachable"), approval.StatusPolicyFailed, 0},
		{"a requirement gates the apply", approval.PolicyResult{Requirements: []approval.PolicyRequirement{
			{Name: "security", Approvers: approval.Approvers{Users: []approval.UserID{"dave"}}, MinApprovals: 1, Stage: approval.StagePreApply},
		}, Warnings: []string{"big change"}}, nil, approval.StatusApplied, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			in := input(destroysNeedTwo)
			in.Directory = append(in.Directory, dave)
			in.Workspace.Policies = []string{"production.rego"}
			in.Cost = &approval.CostSummary{SHA256: "c0575", Currency: "USD"}
			var acts *activities.Activities
			var seen activities.PoliciesInput
			h.env.OnActivity(acts.EvaluatePolicies, mock.Anything, mock.Anything).Return(func(_ context.Context, pin activities.PoliciesInput) (activities.PolicyOutcome, error) {
				seen = pin
				return policyOutcome(in, tc.result), tc.err
			})
			h.update(time.Minute, workflows.UpdateApprove, "b", approval.Request{Actor: bob})
			h.update(2*time.Minute, workflows.UpdateApprove, "c", approval.Request{Actor: carol})
			h.update(3*time.Minute, workflows.UpdateApprove, "d", approval.Request{Actor: dave})
			got := h.run(in)
			if got.Status != tc.status || len(h.applies) != tc.applies {
				t.Fatalf("status %s, %d applies; want %s, %d", got.Status, len(h.applies), tc.status, tc.applies)
			}
			if seen.PlanSHA256 != "4f2c" || seen.CostSHA256 != "c0575" || seen.Workspace != "prod-network" || seen.ChangesDigest != in.Plan.ChangesDigest {
				t.Errorf("policy input %+v; want the plan, its changes and the cost by hash", seen)
			}
			if tc.err != nil && (got.Policy == nil || got.Policy.Error == "") {
				t.Errorf("policy %+v; want the failure recorded", got.Policy)
			}
			if tc.status == approval.StatusApplied {
				asked := h.eventsOf(activities.EventApprovalRequested)
				if len(asked) != 2 || !slices.Equal(asked[0].Warnings, []string{"big change"}) || !slices.Equal(asked[1].Reasons, []string{"policy:security"}) {
					t.Errorf("approval requests %+v; want the warning with the first, then the policy reason at pre_apply", asked)
				}
			}
		})
	}
}
