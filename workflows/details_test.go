package workflows

import (
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

func TestCurrentDetailsSayWhatTheRunWaitsFor(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	ws := approval.Workspace{Name: "prod", Timing: approval.Timing{Timeout: 4 * time.Hour}, Rules: []approval.Rule{
		{Name: "destroys-need-two", Approvers: approval.Approvers{Groups: []string{"platform"}}, MinApprovals: 2},
		{Name: "iam", Approvers: approval.Approvers{Users: []approval.UserID{"dave", "sam"}}, MinApprovals: 1},
	}}
	bob := approval.Identity{ID: "bob", Groups: []string{"platform"}}
	alice := approval.Identity{ID: "alice"}
	plan := approval.Plan{PlanSummary: approval.PlanSummary{SHA256: "0123456789abcdef"}}
	// The gateway evaluates the rules; the run starts from their reasons.
	reasons := approval.Evaluate(ws, plan, nil, alice, []approval.Identity{alice, bob})
	run := approval.NewRun(approval.NewRunParams{ID: "r", Workspace: ws, RequestedBy: alice,
		Plan: plan.PlanSummary, Reasons: reasons}, t0)
	if _, err := run.Approve(approval.Request{ID: "1", Actor: bob}, t0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mutate func(*approval.Run)
		want   string
	}{
		{func(*approval.Run) {}, "waiting for 1/2 approvals on destroys-need-two from group platform; 0/1 approvals on iam from users dave, sam; times out 2026-11-23 14:00 UTC"},
		{func(r *approval.Run) {
			_ = r.RequestChanges(approval.Request{Actor: bob, Comment: "split it"}, t0)
		}, `changes requested by bob ("split it"); waiting for a revised plan from alice; times out 2026-11-23 14:00 UTC`},
		// StartApply refuses a run that is not approved; the details of
		// one that applies are what is tested here.
		{func(r *approval.Run) { r.Status = approval.StatusApplying }, "applying plan 0123456789ab"},
		{func(r *approval.Run) { r.TimeOut(t0) }, "timed out at 2026-11-23 14:00 UTC (outcome reject): nobody decided in time"},
		{func(r *approval.Run) {
			_ = r.Reject(approval.Request{Actor: bob, Comment: "too risky"}, t0)
		}, "rejected by bob: too risky"},
		{func(r *approval.Run) {
			r.Status, r.Origin = approval.StatusPlanning, &approval.Origin{Ref: "main"}
		}, "planning the workspace at main"},
		{func(r *approval.Run) {
			r.Status, r.QueuedBehind = approval.StatusQueued, "run-first"
		}, "approved; queued behind run-first, which holds the workspace's apply lock"},
		{func(r *approval.Run) {
			r.Status, r.Frozen = approval.StatusApproved, &approval.Freeze{Until: t0.Add(62 * time.Hour), Reason: "weekend"}
		}, "approved; frozen until 2026-11-26 00:00 UTC (weekend): applies when the freeze window ends"},
		{func(r *approval.Run) {
			r.Status, r.Mode = approval.StatusApproved, approval.ModeGate
		}, "approved: the pipeline applies plan 0123456789ab"},
		{func(r *approval.Run) {
			r.Status, r.Error = approval.StatusNoChanges, "the plan changes nothing"
		}, "no_changes: the plan changes nothing"},
	} {
		r := run.Clone()
		tc.mutate(&r)
		if got := currentDetails(r); got != tc.want {
			t.Errorf("got %q;\nwant %q", got, tc.want)
		}
	}
	if !strings.HasPrefix(describe(run.Reasons[1]), "users dave, sam") {
		t.Errorf("describe = %q", describe(run.Reasons[1]))
	}
}

func TestCurrentDetailsNameTheTicket(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	ws := approval.Workspace{Name: "prod", Timing: approval.Timing{Timeout: 4 * time.Hour},
		External: &approval.ExternalApproval{Provider: approval.ProviderServiceNow}}
	plan := approval.Plan{PlanSummary: approval.PlanSummary{SHA256: "0123456789abcdef"}}
	alice := approval.Identity{ID: "alice"}
	run := approval.NewRun(approval.NewRunParams{ID: "r", Workspace: ws, RequestedBy: alice, Plan: plan.PlanSummary,
		Reasons: approval.Evaluate(ws, plan, nil, alice, nil)}, t0)
	run.TicketNotOpened("could not open the ServiceNow ticket: HTTP 503", t0)
	if got, want := currentDetails(run), "opening the ServiceNow ticket for approval (could not open the ServiceNow ticket: HTTP 503); times out 2026-11-23 14:00 UTC"; got != want {
		t.Errorf("details %q; want %q", got, want)
	}
	if err := run.TicketOpened(approval.External{ID: "sys1", Ref: "CHG0030001", Link: "https://sn/x", State: "approval=requested"}, t0); err != nil {
		t.Fatal(err)
	}
	if got, want := currentDetails(run), "waiting for approval in ServiceNow CHG0030001 (https://sn/x), last state approval=requested; times out 2026-11-23 14:00 UTC"; got != want {
		t.Errorf("details %q; want %q", got, want)
	}
	if got := ticketKeys(*run.External); strings.Join(got, ",") != "CHG0030001,sys1" {
		t.Errorf("ticket keys %v", got)
	}
}
