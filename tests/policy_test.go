package tests

import (
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

func readTestdata(t *testing.T, name string) json.RawMessage {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func (s *stack) submit(ws, token string, body map[string]any) gateway.RunView {
	s.t.Helper()
	r := s.call("POST", "/api/v1/workspaces/"+ws+"/runs", token, body)
	if r.status != http.StatusCreated {
		s.t.Fatalf("create run: %d %s", r.status, r.body)
	}
	var run gateway.RunView
	r.decode(s.t, &run)
	return run
}

// TestPolicyRaisesAReasonThatGatesApply submits a plan that creates an IAM
// role with an Infracost estimate: the real Rego policy asks security to
// approve before apply, warns about the cost, and the finance tier applies.
func TestPolicyRaisesAReasonThatGatesApply(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.submit("guarded", "t-alice", map[string]any{
		"plan": readTestdata(t, "plans/iam.json"), "cost": readTestdata(t, "infracost.json"), "message": "deployer role",
	})
	got := s.waitFor(run, approval.StatusPendingApproval)
	var ids []string
	for _, r := range got.Reasons {
		ids = append(ids, r.ID+"="+string(r.State))
	}
	want := []string{"rule:platform-review=open", "rule:finance-over-500=open", "policy:iam-security-review=waiting"}
	if !slices.Equal(ids, want) {
		t.Fatalf("reasons %v; want %v", ids, want)
	}
	if got.Policy == nil || len(got.Policy.Warnings) != 1 || !strings.Contains(got.Policy.Warnings[0], "644.736 USD") || !strings.HasSuffix(got.Policy.Policies[0], "testdata/policies/guard.rego") {
		t.Errorf("policy %+v; want the cost warning from guard.rego", got.Policy)
	}
	if got.Cost == nil || got.Cost.MonthlyCostDelta != 644.736 || got.Cost.Currency != "USD" {
		t.Errorf("cost %+v; want the estimate's 644.736 USD delta", got.Cost)
	}

	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
	s.decide(run, "approve", "t-erin", nil, http.StatusOK) // finance: erin is listed by name
	// The policy reason now opens; only security may approve it.
	s.decide(run, "approve", "t-carol", nil, http.StatusForbidden)
	if len(s.applied()) != 0 {
		t.Fatal("applied before the policy reason was approved")
	}
	s.decide(run, "approve", "t-sam", nil, http.StatusOK)
	s.waitFor(run, approval.StatusApplied)
	if lines := s.applied(); len(lines) != 1 {
		t.Errorf("apply ran %d times; want once", len(lines))
	}
}

func TestPolicyDenialFailsTheRunBeforeApproval(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.submit("guarded", "t-alice", map[string]any{"plan": readTestdata(t, "plans/kms-delete.json")})
	got := s.waitFor(run, approval.StatusPolicyFailed)
	if got.Policy == nil || len(got.Policy.Denials) != 1 || !strings.Contains(got.Policy.Denials[0], "aws_kms_key.main") {
		t.Errorf("policy %+v; want the KMS denial", got.Policy)
	}
	s.decide(run, "approve", "t-bob", nil, http.StatusConflict)
	if len(s.applied()) != 0 {
		t.Error("a denied plan was applied")
	}
}

func TestCostIsValidatedAndMissingCostFailsClosed(t *testing.T) {
	s := newStack(t, stackOptions{})
	r := s.call("POST", "/api/v1/workspaces/guarded/runs", "t-alice", map[string]any{
		"plan": readTestdata(t, "plans/iam.json"), "cost": map[string]any{"currency": "USD"},
	})
	if r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(t), "cost") {
		t.Errorf("a broken estimate: %d %s; want 400 naming cost", r.status, r.body)
	}
	run := s.submit("guarded", "t-alice", map[string]any{"plan": readTestdata(t, "plans/iam.json")})
	got := s.waitFor(run, approval.StatusPendingApproval)
	i := slices.IndexFunc(got.Reasons, func(r gateway.ReasonView) bool { return r.ID == "rule:finance-over-500" })
	if i < 0 || !strings.Contains(got.Reasons[i].Note, "no cost estimate") {
		t.Errorf("reasons %+v; want the finance reason, noting the missing estimate", got.Reasons)
	}
}
