package approval_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// newRunFor starts a run the way its callers do since rules are evaluated
// outside the workflow: Evaluate the workspace on the whole plan (with the
// directory at hand), then NewRun from the plan's summary and the reasons.
func newRunFor(ws approval.Workspace, requester approval.Identity, plan approval.Plan, cost *approval.CostSummary, directory []approval.Identity, now time.Time) approval.Run {
	return approval.NewRun(approval.NewRunParams{
		ID: "run-1", Workspace: ws, RequestedBy: requester, Plan: plan.PlanSummary, Cost: cost,
		Reasons: approval.Evaluate(ws, plan, cost, requester, directory),
	}, now)
}

// lifecycleWorkspace needs two platform approvals for a destroy before apply
// and dave's sign-off after it; with policies, runs start evaluating them.
func lifecycleWorkspace(policies bool) approval.Workspace {
	ws := prodWorkspace(destroysNeedTwo)
	ws.Steps = []approval.Step{{Name: "signoff", Stage: approval.StagePostApply, Approvers: approval.Approvers{Users: []approval.UserID{"dave"}}, MinApprovals: 1}}
	if policies {
		ws.Policies = []string{"policies/production.rego"}
	}
	return ws
}

// runIn returns a run of lifecycleWorkspace brought to status st through
// the transitions a workflow makes.
func runIn(t *testing.T, st approval.Status) approval.Run {
	t.Helper()
	policies := st == approval.StatusEvaluatingPolicy || st == approval.StatusPolicyFailed
	run := newRunFor(lifecycleWorkspace(policies), alice, destroyPlan(), nil, directory, t0)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("bringing a run to %s: %s: %v", st, what, err)
		}
	}
	approve := func() {
		t.Helper()
		mustApprove(t, &run, "bob-1", bob, t0)
		mustApprove(t, &run, "carol-1", carol, t0)
	}
	switch st {
	case approval.StatusEvaluatingPolicy, approval.StatusPendingApproval:
	case approval.StatusPolicyFailed:
		must("policy", run.ApplyPolicy(approval.PolicyResult{Denials: []string{"no"}}, nil, t0))
	case approval.StatusChangesRequested:
		must("request changes", run.RequestChanges(req("rc", carol, "split it"), t0))
	case approval.StatusRejected:
		must("reject", run.Reject(req("rj", carol, "too risky"), t0))
	case approval.StatusCancelled:
		must("cancel", run.Cancel(req("cn", alice, "superseded"), t0))
	case approval.StatusTimedOut:
		must("time out", run.TimeOut(t0.Add(time.Hour)))
	case approval.StatusApproved:
		approve()
	case approval.StatusApplying:
		approve()
		must("start apply", run.StartApply(t0))
	case approval.StatusAwaitingSignoff, approval.StatusApplied, approval.StatusFailed, approval.StatusOutcomeUnknown:
		approve()
		must("start apply", run.StartApply(t0))
		res := approval.ApplyResult{Executed: true}
		switch st {
		case approval.StatusFailed:
			res.ExitCode = 1
		case approval.StatusOutcomeUnknown:
			res.OutcomeUnknown, res.Error = true, "worker lost"
		}
		must("finish apply", run.FinishApply(res, t0))
		if st == approval.StatusApplied {
			mustApprove(t, &run, "dave-1", dave, t0)
		}
	default:
		t.Fatalf("runIn: no way to reach %s", st)
	}
	if run.Status != st {
		t.Fatalf("runIn(%s): got status %s; want %s", st, run.Status, st)
	}
	return run
}

// unchanged fails the test when run differs from before (a Clone taken
// before the call that should have changed nothing).
func unchanged(t *testing.T, what string, before, run approval.Run) {
	t.Helper()
	got, want := reflect.ValueOf(run), reflect.ValueOf(before)
	for i := range got.NumField() {
		if g, w := got.Field(i).Interface(), want.Field(i).Interface(); !reflect.DeepEqual(g, w) {
			t.Errorf("%s changed the run's %s: got %+v; want %+v", what, got.Type().Field(i).Name, g, w)
		}
	}
}
