package tests

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

func TestRevokeOverHTTP(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
	var after gateway.RunView
	s.decide(run, "revoke", "t-bob", map[string]string{"comment": "approved the wrong run"}, http.StatusOK).decode(t, &after)
	if after.Reasons[0].Progress != "0/2" || after.Reasons[0].Approvers[0].State != approval.ApproverRevoked {
		t.Errorf("after revoke: %s %+v; want 0/2 with bob revoked", after.Reasons[0].Progress, after.Reasons[0].Approvers[0])
	}
	for _, tc := range []struct {
		token string
		body  any
		want  int
		say   string
	}{
		{"t-bob", nil, http.StatusConflict, "no approval"},
		{"t-victor", nil, http.StatusForbidden, "viewers"},
		{"t-bob", map[string]string{"message": "x"}, http.StatusBadRequest, "message"},
		{"t-bob", map[string]any{"reason_ids": []string{"x"}}, http.StatusBadRequest, "reason_ids"},
	} {
		if msg := s.decide(run, "revoke", tc.token, tc.body, tc.want).errorMessage(t); !strings.Contains(msg, tc.say) {
			t.Errorf("revoke by %s: %q; want it to mention %q", tc.token, msg, tc.say)
		}
	}
	// Once a reason is satisfied, approvals on it are final.
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
	s.decide(run, "approve", "t-carol", nil, http.StatusOK)
	s.waitFor(run, approval.StatusApplied)
	s.decide(run, "revoke", "t-carol", nil, http.StatusConflict)
}

func TestRequestChangesRoundTripOverHTTP(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)

	s.decide(run, "request-changes", "t-carol", map[string]string{}, http.StatusBadRequest)
	s.decide(run, "request-changes", "t-alice", map[string]string{"comment": "x"}, http.StatusForbidden)
	var rc gateway.RunView
	s.decide(run, "request-changes", "t-carol", map[string]string{"comment": "keep the legacy SG"}, http.StatusOK).decode(t, &rc)
	if rc.Status != approval.StatusChangesRequested {
		t.Fatalf("status %s; want changes_requested", rc.Status)
	}
	s.decide(run, "approve", "t-carol", nil, http.StatusConflict)

	revised := readPlan(t, "prod-network.json")
	revised = []byte(strings.Replace(string(revised), `"actions": ["update"]`, `"actions": ["no-op"]`, 1))
	s.decide(run, "plan", "t-bob", map[string]any{"plan": revised}, http.StatusForbidden)
	s.decide(run, "plan", "t-alice", map[string]any{"plan": map[string]any{"format_version": "1.2", "errored": true}}, http.StatusBadRequest)
	s.decide(run, "plan", "t-alice", map[string]any{}, http.StatusBadRequest)
	var rp gateway.RunView
	s.decide(run, "plan", "t-alice", map[string]any{"plan": revised}, http.StatusOK).decode(t, &rp)
	if rp.Status != approval.StatusPendingApproval || rp.Plan.SHA256 == run.Plan.SHA256 || rp.Plan.Changes != 0 {
		t.Fatalf("after revision: %s plan %s changes %d; want pending on the new plan without the update", rp.Status, rp.Plan.SHA256, rp.Plan.Changes)
	}
	// The destroys did not change: bob's approval stands.
	if len(rp.Reasons) != 1 || rp.Reasons[0].Progress != "1/2" || len(rp.Rounds) != 2 || !slices.Equal(rp.Rounds[1].Kept, []string{"rule:destroys-need-two"}) {
		t.Errorf("reasons %+v rounds %+v; want destroys kept at 1/2 in round 2", rp.Reasons, rp.Rounds)
	}
	s.decide(run, "approve", "t-carol", nil, http.StatusOK)
	s.waitFor(run, approval.StatusApplied)
	lines := s.applied()
	if len(lines) != 1 || !strings.Contains(lines[0], rp.Plan.SHA256) {
		t.Errorf("apply log %q; want the revised plan %s applied once", lines, rp.Plan.SHA256)
	}
}

func TestBypassOverHTTP(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(run, "bypass", "t-erin", map[string]string{}, http.StatusBadRequest)
	s.decide(run, "bypass", "t-erin", map[string]string{"comment": "x"}, http.StatusBadRequest)
	if msg := s.decide(run, "bypass", "t-bob", map[string]string{"justification": "x"}, http.StatusForbidden).errorMessage(t); !strings.Contains(msg, "admins") {
		t.Errorf("bypass by bob: %q; want it to say only admins", msg)
	}
	other := s.createRun("staged", "t-alice", "add-only.json")
	if msg := s.decide(other, "bypass", "t-erin", map[string]string{"justification": "x"}, http.StatusForbidden).errorMessage(t); !strings.Contains(msg, "does not allow") {
		t.Errorf("bypass where not allowed: %q", msg)
	}
	var bp gateway.RunView
	s.decide(run, "bypass", "t-erin", map[string]string{"justification": "INC-42: NAT down"}, http.StatusOK).decode(t, &bp)
	if !bp.Bypassed {
		t.Error("run not marked bypassed")
	}
	got := s.waitFor(run, approval.StatusApplied)
	last := got.Decisions[len(got.Decisions)-1]
	if last.Decision != approval.DecisionBypass || !last.Bypassed || last.Comment != "INC-42: NAT down" || !got.Reasons[0].Approvers[len(got.Reasons[0].Approvers)-1].Bypassed {
		t.Errorf("decision %+v approvers %+v; want the bypass recorded and shown", last, got.Reasons[0].Approvers)
	}
	if len(s.applied()) != 1 {
		t.Error("bypassed run did not apply once")
	}
}

func TestStagesOverHTTP(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("staged", "t-alice", "add-only.json")
	var ids []string
	var statesOf = func(v gateway.RunView) string {
		var out []string
		for _, r := range v.Reasons {
			out = append(out, r.ID+"="+string(r.State))
		}
		return strings.Join(out, " ")
	}
	for _, r := range run.Reasons {
		ids = append(ids, r.ID)
	}
	want := []string{"rule:platform-review", "rule:security-review", "step:apply-window", "step:security-signoff"}
	if !slices.Equal(ids, want) {
		t.Fatalf("reasons %v; want %v", ids, want)
	}
	// dave's step waits for pre_apply: naming it is a conflict.
	s.decide(run, "approve", "t-dave", map[string]any{"reason_ids": []string{"step:apply-window"}}, http.StatusConflict)
	s.decide(run, "approve", "t-dave", map[string]any{"reason_ids": []string{"rule:nope"}}, http.StatusBadRequest)
	s.decide(run, "approve", "t-bob", map[string]any{"reason_ids": []string{"rule:security-review"}}, http.StatusForbidden)
	// sam approves security-review by name; then dave, also in security, has
	// no open reason left to approve: his step still waits.
	var v gateway.RunView
	s.decide(run, "approve", "t-sam", map[string]any{"reason_ids": []string{"rule:security-review"}}, http.StatusOK).decode(t, &v)
	if msg := s.decide(run, "approve", "t-dave", nil, http.StatusForbidden).errorMessage(t); !strings.Contains(msg, "step:apply-window (stage pre_apply)") {
		t.Errorf("dave with only a waiting reason: %q; want it to name the waiting step", msg)
	}
	s.decide(run, "approve", "t-bob", nil, http.StatusOK).decode(t, &v)
	if got := statesOf(v); got != "rule:platform-review=approved rule:security-review=approved step:apply-window=open step:security-signoff=waiting" {
		t.Fatalf("states %s; want pre_apply open after post_plan", got)
	}
	s.decide(run, "approve", "t-dave", nil, http.StatusOK)
	got := s.waitFor(run, approval.StatusAwaitingSignoff)
	if len(s.applied()) != 1 || got.Apply == nil {
		t.Fatal("apply did not run before the sign-off")
	}
	s.decide(run, "approve", "t-sam", nil, http.StatusOK)
	s.waitFor(run, approval.StatusApplied)

	var reqs struct {
		Reasons []gateway.ReasonView `json:"reasons"`
	}
	s.call("GET", s.runPath(run)+"/approval-requirements", "t-alice", nil).decode(t, &reqs)
	for _, r := range reqs.Reasons {
		if r.State != approval.ReasonApproved || r.Kind == "" || r.Stage == "" || r.OpenedAt == nil {
			t.Errorf("reason %+v; want approved with kind, stage and opened_at", r)
		}
	}
}

func TestOnBehalfOf(t *testing.T) {
	s := newStack(t, stackOptions{})
	plan := readPlan(t, "prod-network.json")
	runs := "/api/v1/workspaces/prod-network/runs"
	r := s.call("POST", runs, "t-ci", map[string]any{"plan": plan, "on_behalf_of": "bob"})
	if r.status != http.StatusCreated {
		t.Fatalf("create by ci-bot for bob: %d %s", r.status, r.body)
	}
	var run gateway.RunView
	r.decode(t, &run)
	if run.RequestedBy != "bob" || run.SubmittedBy != "ci-bot" {
		t.Errorf("requested_by %s submitted_by %s; want bob via ci-bot", run.RequestedBy, run.SubmittedBy)
	}
	if msg := s.decide(run, "approve", "t-bob", nil, http.StatusForbidden).errorMessage(t); !strings.Contains(msg, "self-approval") {
		t.Errorf("bob approving his own run: %q", msg)
	}
	if r := s.call("POST", runs, "t-alice", map[string]any{"plan": plan, "on_behalf_of": "bob"}); r.status != http.StatusForbidden {
		t.Errorf("a person submitting on behalf of another: %d; want 403", r.status)
	}
	if r := s.call("POST", runs, "t-ci", map[string]any{"plan": plan, "on_behalf_of": "nobody"}); r.status != http.StatusBadRequest {
		t.Errorf("on behalf of an unknown user: %d; want 400", r.status)
	}
}
