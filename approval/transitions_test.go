package approval_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// Issue #9: a decision landing while the policies run. Before the state
// checks, ApplyPolicy moved a cancelled run back to pending_approval (or to
// approved), and TimeOut ended a run nobody had been asked about yet.

func TestCancelWhileEvaluatingPolicyStaysCancelled(t *testing.T) {
	requireSecurity := approval.PolicyResult{Requirements: []approval.PolicyRequirement{
		{Name: "iam-review", Approvers: approval.Approvers{Groups: []string{"security"}}, MinApprovals: 1},
	}}
	for _, tc := range []struct {
		name  string
		rules []approval.Rule
		res   approval.PolicyResult
	}{
		{"matching rule, policy requirement", []approval.Rule{destroysNeedTwo}, requireSecurity},
		{"matching rule, no requirement", []approval.Rule{destroysNeedTwo}, approval.PolicyResult{Warnings: []string{"a destroy"}}},
		{"no matching rule, policy requirement", nil, requireSecurity},
		// The old code marked this one approved: it would have applied.
		{"no matching rule, no requirement", nil, approval.PolicyResult{}},
		{"a denial after the cancel", []approval.Rule{destroysNeedTwo}, approval.PolicyResult{Denials: []string{"no destroys on Friday"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := prodWorkspace(tc.rules...)
			ws.Policies = []string{"policies/production.rego"}
			run := newRunFor(ws, alice, destroyPlan(), nil, directory, t0)
			if run.Status != approval.StatusEvaluatingPolicy {
				t.Fatalf("got status %s; want evaluating_policy", run.Status)
			}
			if err := run.Cancel(req("cn", alice, "wrong branch"), t0.Add(time.Second)); err != nil {
				t.Fatalf("cancel while policies run: got %v; want accepted", err)
			}
			if run.Status != approval.StatusCancelled {
				t.Fatalf("got status %s; want cancelled", run.Status)
			}
			before := run.Clone()
			fresh := approval.PolicyReasons(ws, run.Plan, tc.res, alice, directory)
			err := run.ApplyPolicy(tc.res, fresh, t0.Add(2*time.Second))
			if got := approval.ErrorCode(err); got != approval.CodeConflict {
				t.Fatalf("policy result after the cancel: got %q (%v); want conflict", got, err)
			}
			if run.Status != approval.StatusCancelled || run.Policy != nil || len(run.OpenReasons()) != 0 {
				t.Errorf("got status %s, policy %+v, open %v; want cancelled, no policy result, nothing open", run.Status, run.Policy, run.OpenReasons())
			}
			unchanged(t, "a late policy result", before, run)
		})
	}
}

func TestDecisionsWhileEvaluatingPolicy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		do     func(*approval.Run) error
		code   approval.Code
		status approval.Status
	}{
		{"cancel is accepted", func(r *approval.Run) error { return r.Cancel(req("cn", erin, "freeze"), t0) }, "", approval.StatusCancelled},
		{"reject is a conflict", func(r *approval.Run) error { return r.Reject(req("rj", bob, "too risky"), t0) }, approval.CodeConflict, approval.StatusEvaluatingPolicy},
		{"approve is a conflict", func(r *approval.Run) error { _, err := r.Approve(req("ap", bob, ""), t0); return err }, approval.CodeConflict, approval.StatusEvaluatingPolicy},
		// Nobody has been asked yet, so nothing can have timed out.
		{"timeout is a conflict", func(r *approval.Run) error { return r.TimeOut(t0.Add(5 * time.Hour)) }, approval.CodeConflict, approval.StatusEvaluatingPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := runIn(t, approval.StatusEvaluatingPolicy)
			before := run.Clone()
			err := tc.do(&run)
			if got := approval.ErrorCode(err); got != tc.code {
				t.Fatalf("got code %q (%v); want %q", got, err, tc.code)
			}
			if run.Status != tc.status {
				t.Errorf("got status %s; want %s", run.Status, tc.status)
			}
			if tc.code != "" {
				unchanged(t, tc.name, before, run)
			}
		})
	}
}

func TestTimeOutOnlyEndsAWaitingRun(t *testing.T) {
	for _, st := range []approval.Status{
		approval.StatusEvaluatingPolicy, approval.StatusApproved, approval.StatusApplying,
		approval.StatusApplied, approval.StatusRejected, approval.StatusCancelled, approval.StatusTimedOut,
		approval.StatusFailed, approval.StatusPolicyFailed, approval.StatusOutcomeUnknown,
	} {
		t.Run(string(st), func(t *testing.T) {
			run := runIn(t, st)
			before := run.Clone()
			if err := run.TimeOut(t0.Add(5 * time.Hour)); approval.ErrorCode(err) != approval.CodeConflict {
				t.Fatalf("time out a %s run: got %v; want conflict", st, err)
			}
			unchanged(t, "TimeOut", before, run)
		})
	}
	for _, tc := range []struct {
		from    approval.Status
		outcome approval.Outcome
	}{
		{approval.StatusPendingApproval, approval.OutcomeReject},
		{approval.StatusChangesRequested, approval.OutcomeReject},
		{approval.StatusAwaitingSignoff, approval.OutcomeReject},
	} {
		t.Run(string(tc.from)+" times out", func(t *testing.T) {
			run := runIn(t, tc.from)
			if err := run.TimeOut(t0.Add(5 * time.Hour)); err != nil {
				t.Fatalf("time out a %s run: got %v; want nil", tc.from, err)
			}
			if run.Status != approval.StatusTimedOut || run.Outcome != tc.outcome || len(run.OpenReasons()) != 0 {
				t.Errorf("got %s outcome %s open %v; want timed_out, %s, nothing open", run.Status, run.Outcome, run.OpenReasons(), tc.outcome)
			}
		})
	}
}

// Before issue #9 StartApply and FinishApply moved a run from anywhere:
// a late apply result could revive a cancelled run as applied.
func TestApplyStepsCheckTheStatus(t *testing.T) {
	all := []approval.Status{
		approval.StatusEvaluatingPolicy, approval.StatusPendingApproval, approval.StatusChangesRequested,
		approval.StatusApproved, approval.StatusApplying, approval.StatusAwaitingSignoff, approval.StatusApplied,
		approval.StatusRejected, approval.StatusCancelled, approval.StatusTimedOut, approval.StatusFailed,
		approval.StatusPolicyFailed, approval.StatusOutcomeUnknown,
	}
	for _, tc := range []struct {
		name string
		from approval.Status // the one status the step is taken from
		do   func(*approval.Run) error
	}{
		{"StartApply", approval.StatusApproved, func(r *approval.Run) error { return r.StartApply(t0.Add(time.Minute)) }},
		{"FinishApply", approval.StatusApplying, func(r *approval.Run) error {
			return r.FinishApply(approval.ApplyResult{Executed: true}, t0.Add(time.Minute))
		}},
	} {
		for _, st := range all {
			if st == tc.from {
				continue
			}
			t.Run(tc.name+" on "+string(st), func(t *testing.T) {
				run := runIn(t, st)
				before := run.Clone()
				err := tc.do(&run)
				if got := approval.ErrorCode(err); got != approval.CodeConflict {
					t.Fatalf("got code %q (%v); want conflict", got, err)
				}
				if !strings.Contains(err.Error(), string(st)) {
					t.Errorf("error %q; want it to say the run is %s", err, st)
				}
				unchanged(t, tc.name, before, run)
			})
		}
	}
}

func TestFinishApplyOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		res     approval.ApplyResult
		status  approval.Status
		signoff approval.ReasonState
	}{
		{"success opens the sign-off", approval.ApplyResult{Executed: true}, approval.StatusAwaitingSignoff, approval.ReasonOpen},
		{"exit code fails", approval.ApplyResult{Executed: true, ExitCode: 1}, approval.StatusFailed, approval.ReasonCancelled},
		{"error fails", approval.ApplyResult{Error: "apply did not start: plan unavailable"}, approval.StatusFailed, approval.ReasonCancelled},
		// New: nobody saw the apply end. Final, and it wins over the error
		// text that comes with it (which alone would say failed).
		{"outcome unknown", approval.ApplyResult{Executed: true, OutcomeUnknown: true, Error: "worker lost"}, approval.StatusOutcomeUnknown, approval.ReasonCancelled},
		{"outcome unknown with exit 0", approval.ApplyResult{Executed: true, OutcomeUnknown: true}, approval.StatusOutcomeUnknown, approval.ReasonCancelled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := runIn(t, approval.StatusApplying)
			at := t0.Add(time.Minute)
			if err := run.FinishApply(tc.res, at); err != nil {
				t.Fatalf("finish apply: got %v; want nil", err)
			}
			signoff := run.Reasons[slices.IndexFunc(run.Reasons, func(r approval.Reason) bool { return r.ID == "step:signoff" })]
			if run.Status != tc.status || signoff.State != tc.signoff {
				t.Errorf("got status %s, sign-off %s; want %s, %s", run.Status, signoff.State, tc.status, tc.signoff)
			}
			if run.Apply == nil || run.Apply.OutcomeUnknown != tc.res.OutcomeUnknown || !run.UpdatedAt.Equal(at) {
				t.Errorf("got apply %+v updated %v; want the result recorded at %v", run.Apply, run.UpdatedAt, at)
			}
			if tc.status == approval.StatusOutcomeUnknown {
				if !run.Status.Final() || run.Status.Waiting() {
					t.Errorf("outcome_unknown: final %v waiting %v; want final, not waiting", run.Status.Final(), run.Status.Waiting())
				}
				if err := run.StartApply(at); approval.ErrorCode(err) != approval.CodeConflict {
					t.Errorf("apply again after an unknown outcome: got %v; want conflict", err)
				}
			}
		})
	}
}

func TestCancelBySystemLeavesAFinalRunAlone(t *testing.T) {
	for _, st := range []approval.Status{
		approval.StatusApplied, approval.StatusRejected, approval.StatusCancelled, approval.StatusTimedOut,
		approval.StatusFailed, approval.StatusPolicyFailed, approval.StatusOutcomeUnknown,
	} {
		t.Run(string(st), func(t *testing.T) {
			run := runIn(t, st)
			before := run.Clone()
			run.CancelBySystem("the workflow was cancelled in Temporal", t0.Add(time.Hour))
			unchanged(t, "CancelBySystem", before, run)
		})
	}
	for _, st := range []approval.Status{approval.StatusEvaluatingPolicy, approval.StatusPendingApproval, approval.StatusChangesRequested} {
		t.Run(string(st)+" is cancelled", func(t *testing.T) {
			run := runIn(t, st)
			run.CancelBySystem("the workflow was cancelled in Temporal", t0.Add(time.Hour))
			last := run.Decisions[len(run.Decisions)-1]
			if run.Status != approval.StatusCancelled || last.Kind != approval.DecisionCancel || last.UserID != approval.SystemActor {
				t.Errorf("got status %s, last decision %+v; want cancelled by the system", run.Status, last)
			}
		})
	}
}

func TestRefuse(t *testing.T) {
	const why = "refused: the run's input is not signed"
	at := t0.Add(time.Minute)
	for _, tc := range []struct {
		from   approval.Status
		refuse bool
	}{
		{approval.StatusEvaluatingPolicy, true},
		{approval.StatusPendingApproval, true},
		{approval.StatusChangesRequested, true},
		{approval.StatusApproved, true},
		// An apply under way is never declared failed: only its result says.
		{approval.StatusApplying, false},
		{approval.StatusApplied, false},
		{approval.StatusCancelled, false},
		{approval.StatusFailed, false},
		{approval.StatusOutcomeUnknown, false},
	} {
		t.Run(string(tc.from), func(t *testing.T) {
			run := runIn(t, tc.from)
			before := run.Clone()
			run.Refuse(why, at)
			if !tc.refuse {
				unchanged(t, "Refuse", before, run)
				return
			}
			if run.Status != approval.StatusFailed || run.Error != why || len(run.OpenReasons()) != 0 || !run.UpdatedAt.Equal(at) {
				t.Errorf("got status %s error %q open %v updated %v; want failed, %q, nothing open, %v", run.Status, run.Error, run.OpenReasons(), run.UpdatedAt, why, at)
			}
			for _, r := range run.Reasons {
				if r.State != approval.ReasonCancelled && r.State != approval.ReasonApproved {
					t.Errorf("reason %s is %s; want cancelled (or approved before)", r.ID, r.State)
				}
			}
		})
	}
}

func TestRefuseAfterApply(t *testing.T) {
	run := runIn(t, approval.StatusAwaitingSignoff)
	before := run.Clone()
	run.Refuse("refused: a step could not be carried out", t0.Add(time.Minute))
	unchanged(t, "Refuse after the apply", before, run)
}
