package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/worker"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// noMatch is a rule the test plan (one NAT gateway replaced) does not meet:
// a run with only this rule needs nobody.
var noMatch = approval.Rule{Name: "big", When: approval.Conditions{AddsGT: intp(100)},
	Approvers: approval.Approvers{Users: []approval.UserID{"bob"}}, MinApprovals: 1}

// mockSlowPolicy makes EvaluatePolicies answer res (or fail with err) a
// minute after it starts, and counts its calls.
func mockSlowPolicy(h *harness, d draft, res approval.PolicyResult, err error) *atomic.Int64 {
	calls := new(atomic.Int64)
	var acts *activities.Activities
	h.env.OnActivity(acts.EvaluatePolicies, mock.Anything, mock.Anything).After(time.Minute).Return(
		func(context.Context, activities.PoliciesInput) (activities.PolicyOutcome, error) {
			calls.Add(1)
			if err != nil {
				return activities.PolicyOutcome{}, err
			}
			return policyOutcome(d, res), nil
		})
	return calls
}

// TestCancelWhileEvaluatingPolicy cancels a run while its policies are being
// evaluated: the late policy result must not revive it. Before the fix the
// result moved a cancelled run on: with nothing to approve it was applied;
// with a requirement it reopened and waited with its reasons closed.
func TestCancelWhileEvaluatingPolicy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rules  []approval.Rule
		result approval.PolicyResult
	}{
		{"no rule and no requirement", []approval.Rule{noMatch}, approval.PolicyResult{Policies: []string{"production.rego"}}},
		{"a requirement", []approval.Rule{noMatch}, approval.PolicyResult{Policies: []string{"production.rego"}, Requirements: []approval.PolicyRequirement{
			{Name: "security", Approvers: approval.Approvers{Users: []approval.UserID{"dave"}}, MinApprovals: 1},
		}}},
		{"a matching rule", []approval.Rule{destroysNeedTwo}, approval.PolicyResult{Policies: []string{"production.rego"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			in := input(tc.rules...)
			in.Directory = append(in.Directory, dave)
			in.Workspace.Policies = []string{"production.rego"}
			calls := mockSlowPolicy(h, in, tc.result, nil)
			var during approval.Run
			h.env.RegisterDelayedCallback(func() { during = h.state() }, 20*time.Second)
			cancel := h.update(30*time.Second, workflows.UpdateCancel, "c1", approval.Request{Actor: alice, Comment: "wrong branch"})
			got := h.run(in)

			if during.Status != approval.StatusEvaluatingPolicy {
				t.Fatalf("at 20s the run is %s; want evaluating_policy (the test's premise)", during.Status)
			}
			if cancel.err != nil || cancel.res.Status != approval.StatusCancelled {
				t.Errorf("cancel during the policy step: %v, %+v; want the run cancelled", cancel.err, cancel.res)
			}
			if got.Status != approval.StatusCancelled || len(h.applies) != 0 {
				t.Errorf("status %s with %d applies; want cancelled and none", got.Status, len(h.applies))
			}
			if n := calls.Load(); n != 1 || got.Policy != nil {
				t.Errorf("policies evaluated %d times, recorded %+v; want once, the late result recorded nowhere", n, got.Policy)
			}
			if open := got.OpenReasons(); len(open) != 0 {
				t.Errorf("open reasons %v after the cancel; want none", open)
			}
			if n := len(h.eventsOf(activities.EventApprovalRequested)); n != 0 {
				t.Errorf("%d approval requests; want none for a cancelled run", n)
			}
		})
	}
}

// TestRejectWhileEvaluatingPolicyIsRefused: nothing can be rejected before
// the policies said what the run needs; the run then goes on as usual.
func TestRejectWhileEvaluatingPolicyIsRefused(t *testing.T) {
	h := newHarness(t)
	in := input(destroysNeedTwo)
	in.Workspace.Policies = []string{"production.rego"}
	mockSlowPolicy(h, in, approval.PolicyResult{Policies: []string{"production.rego"}}, nil)
	early := h.update(30*time.Second, workflows.UpdateReject, "r1", approval.Request{Actor: bob, Comment: "too early"})
	h.update(2*time.Minute, workflows.UpdateApprove, "b", approval.Request{Actor: bob})
	h.update(3*time.Minute, workflows.UpdateApprove, "c", approval.Request{Actor: carol})
	got := h.run(in)

	if !early.rejected || errType(early.err) != string(approval.CodeConflict) {
		t.Errorf("reject during the policy step: %v (type %q, rejected %v); want a conflict from the validator", early.err, errType(early.err), early.rejected)
	}
	if got.Status != approval.StatusApplied || len(h.applies) != 1 {
		t.Errorf("status %s with %d applies; want applied once", got.Status, len(h.applies))
	}
	for _, d := range got.Decisions {
		if d.Kind == approval.DecisionReject {
			t.Errorf("decisions %+v; want no reject recorded", got.Decisions)
		}
	}
}

// TestSlowPolicyFailureFailsClosed: a policy evaluation that itself fails,
// however long it took, ends the run policy_failed.
func TestSlowPolicyFailureFailsClosed(t *testing.T) {
	h := newHarness(t)
	in := input(noMatch)
	in.Workspace.Policies = []string{"production.rego"}
	mockSlowPolicy(h, in, approval.PolicyResult{}, errors.New("policy store unreachable"))
	got := h.run(in)
	if got.Status != approval.StatusPolicyFailed || len(h.applies) != 0 {
		t.Errorf("status %s with %d applies; want policy_failed and none", got.Status, len(h.applies))
	}
	if got.Policy == nil || !strings.Contains(got.Policy.Error, "policy store unreachable") {
		t.Errorf("policy %+v; want the failure recorded", got.Policy)
	}
}

// TestForgedUpdatesCountNothing sends decisions the gateway did not make (or
// not for this run, this Update, this actor or this moment): the validator
// refuses each, so none reaches history, and a genuine one still counts.
func TestForgedUpdatesCountNothing(t *testing.T) {
	h := newHarness(t)
	approve := workflows.UpdateApprove
	// signed is an approval the gateway's key signed for run wf and
	// Update ID id, by actor, issued at(now).
	signed := func(wf, id string, actor approval.Identity, at func(time.Time) time.Time) func(time.Time) any {
		return func(now time.Time) any {
			return signDecision(t, testKeys, wf, approve, id, at(now), approval.Request{Actor: actor})
		}
	}
	now := func(t time.Time) time.Time { return t }
	forgeries := []struct {
		name  string
		id    string
		build func(time.Time) any
	}{
		// Each is refused for what makes it a forgery (see want below),
		// not by the approval rules: bob may approve this run.
		{"no signature", "f-unsigned", func(now time.Time) any {
			return approval.Request{ID: "f-unsigned", IssuedAt: now, Actor: bob}
		}},
		{"another key", "f-key", func(now time.Time) any {
			return signDecision(t, otherKeys, testWorkflowID, approve, "f-key", now, approval.Request{Actor: bob})
		}},
		{"signed for another run", "f-run", signed("another-run", "f-run", bob, now)},
		{"signed for another Update ID", "f-update", func(now time.Time) any {
			req := signDecision(t, testKeys, testWorkflowID, approve, "f-other", now, approval.Request{Actor: bob}).(approval.Request)
			req.ID = "f-update" // the body claims the ID it is sent under
			return req
		}},
		{"body for another Update ID", "f-body", signed(testWorkflowID, "f-elsewhere", bob, now)},
		{"signed for another Update", "f-name", func(now time.Time) any {
			return signDecision(t, testKeys, testWorkflowID, workflows.UpdateRenotify, "f-name", now, approval.Request{Actor: bob})
		}},
		{"body changed after signing", "f-tampered", func(now time.Time) any {
			req := signDecision(t, testKeys, testWorkflowID, approve, "f-tampered", now, approval.Request{Actor: bob}).(approval.Request)
			req.Actor = carol
			return req
		}},
		{"actor unknown to the worker", "f-mallory", signed(testWorkflowID, "f-mallory",
			approval.Identity{ID: "mallory", Groups: []string{"platform"}, Roles: []approval.Role{approval.RoleApprover}}, now)},
		{"actor with extra groups", "f-groups", signed(testWorkflowID, "f-groups",
			approval.Identity{ID: bob.ID, Email: bob.Email, Source: bob.Source, Groups: []string{"platform", "security"}, Roles: bob.Roles}, now)},
		{"actor with extra roles", "f-roles", signed(testWorkflowID, "f-roles",
			approval.Identity{ID: victor.ID, Email: victor.Email, Groups: victor.Groups, Roles: []approval.Role{approval.RoleApprover}}, now)},
		{"stale", "f-stale", signed(testWorkflowID, "f-stale", bob,
			func(t time.Time) time.Time { return t.Add(-11 * time.Minute) })},
		{"from the future", "f-future", signed(testWorkflowID, "f-future", bob,
			func(t time.Time) time.Time { return t.Add(11 * time.Minute) })},
	}
	outcomes := make([]*outcome, len(forgeries))
	for i, f := range forgeries {
		outcomes[i] = h.send(time.Duration(i+1)*time.Minute, approve, f.id, f.build)
	}
	// A forged cancel and a forged bypass are refused as well.
	forgedCancel := h.send(30*time.Minute, workflows.UpdateCancel, "f-cancel", func(now time.Time) any {
		return signDecision(t, otherKeys, testWorkflowID, workflows.UpdateCancel, "f-cancel", now, approval.Request{Actor: alice, Comment: "stop"})
	})
	genuine := h.update(40*time.Minute, approve, "bob-1", approval.Request{Actor: bob})
	h.update(50*time.Minute, workflows.UpdateCancel, "end", approval.Request{Actor: alice, Comment: "done testing"})
	got := h.run(input(destroysNeedTwo))

	for i, f := range forgeries {
		o := outcomes[i]
		want := "signature: "
		if strings.HasPrefix(f.name, "actor") {
			want = "actor: "
		}
		if !o.rejected || errType(o.err) != string(approval.CodeForbidden) || o.err == nil || !strings.Contains(o.err.Error(), want) {
			t.Errorf("%s: got %v (type %q, rejected by the validator %v); want a forbidden %q rejected by the validator", f.name, o.err, errType(o.err), o.rejected, want)
		}
	}
	if !forgedCancel.rejected {
		t.Errorf("forged cancel: %v; want it rejected", forgedCancel.err)
	}
	if genuine.err != nil || genuine.run.Reasons[0].Progress() != "1/2" {
		t.Errorf("genuine approval after the forgeries: %v at %s; want it counted, 1/2", genuine.err, genuine.run.Reasons[0].Progress())
	}
	if got.Status != approval.StatusCancelled || len(h.applies) != 0 {
		t.Errorf("status %s with %d applies; want cancelled and none", got.Status, len(h.applies))
	}
	if len(got.Decisions) != 2 || got.Decisions[0].ID != "bob-1" || got.Decisions[1].Kind != approval.DecisionCancel {
		t.Errorf("decisions %+v; want bob's genuine approval and the cancel only", got.Decisions)
	}
}

// TestForgedStartNeverApplies starts runs the gateway did not sign as they
// are, for a plan nothing needs approving: each is refused, fails and never
// applies. The genuine start applies.
func TestForgedStartNeverApplies(t *testing.T) {
	d := input(noMatch)
	for _, tc := range []struct {
		name   string
		runner workflows.Runner
		start  func(t *testing.T, now time.Time) workflows.RunInput
		// want is in the run's error; "" means the run applies.
		want string
	}{
		{"genuine", testRunner(), func(t *testing.T, now time.Time) workflows.RunInput {
			return d.input(t, testWorkflowID, now)
		}, ""},
		{"unsigned", testRunner(), func(t *testing.T, now time.Time) workflows.RunInput {
			in := d.input(t, testWorkflowID, now)
			in.Signature = ""
			return in
		}, "gateway"},
		{"another key", testRunner(), func(t *testing.T, now time.Time) workflows.RunInput {
			in := d.input(t, testWorkflowID, now)
			payload, err := workflows.StartPayload(testWorkflowID, in)
			if err != nil {
				t.Fatal(err)
			}
			in.Signature = otherKeys.Sign(payload)
			return in
		}, "gateway"},
		{"signed for another run", testRunner(), func(t *testing.T, now time.Time) workflows.RunInput {
			return d.input(t, "another-run", now)
		}, "gateway"},
		{"reasons dropped after signing", testRunner(), func(t *testing.T, now time.Time) workflows.RunInput {
			in := input(destroysNeedTwo).input(t, testWorkflowID, now)
			in.Reasons = nil
			return in
		}, "gateway"},
		{"signed long before the start", testRunner(), func(t *testing.T, now time.Time) workflows.RunInput {
			return d.input(t, testWorkflowID, now.Add(-time.Hour))
		}, "too far from its start"},
		{"worker without keys", workflows.Runner{Verify: verifyPeople}, func(t *testing.T, now time.Time) workflows.RunInput {
			return d.input(t, testWorkflowID, now)
		}, "no signing keys"},
		{"resume state without a continue-as-new", testRunner(), func(t *testing.T, now time.Time) workflows.RunInput {
			in := input(destroysNeedTwo).input(t, testWorkflowID, now)
			// Someone hands the run a state in which it is approved.
			state := approval.NewRun(approval.NewRunParams{ID: testWorkflowID, Workspace: in.Workspace, RequestedBy: alice, Plan: in.Plan.PlanSummary}, now)
			in.Resume = &workflows.Resume{Run: state}
			return in
		}, "continue-as-new"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv()
			acts := &activities.Activities{}
			worker.Register(env, tc.runner, acts)
			onNotify(env, acts, notifyOK)
			var applies atomic.Int64
			env.OnActivity(acts.Apply, mock.Anything, mock.Anything).Return(func(context.Context, activities.ApplyInput) (approval.ApplyResult, error) {
				applies.Add(1)
				return approval.ApplyResult{Executed: true}, nil
			})
			env.ExecuteWorkflow(workflows.RunWorkflowName, tc.start(t, env.Now()))
			var got approval.Run
			if err := env.GetWorkflowResult(&got); err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if n := applies.Load(); got.Status != approval.StatusApplied || n != 1 {
					t.Errorf("status %s with %d applies; want the genuine run applied once", got.Status, n)
				}
				return
			}
			if n := applies.Load(); got.Status != approval.StatusFailed || n != 0 {
				t.Errorf("status %s with %d applies; want failed and none", got.Status, n)
			}
			if !strings.HasPrefix(got.Error, "refused: ") || !strings.Contains(got.Error, tc.want) {
				t.Errorf("error %q; want a refusal that mentions %q", got.Error, tc.want)
			}
			if len(got.Decisions) != 0 || got.Apply != nil {
				t.Errorf("decisions %+v, apply %+v; want nothing recorded", got.Decisions, got.Apply)
			}
		})
	}
}

// TestNullStartIsRefused starts a run with no input at all (JSON null, which
// only a client that bypasses the gateway sends): it is refused as an
// unsigned start, fails and never applies; the workflow task does not fail
// on a nil input, which Temporal would retry for ever.
func TestNullStartIsRefused(t *testing.T) {
	env := newEnv()
	acts := &activities.Activities{}
	worker.Register(env, testRunner(), acts)
	onNotify(env, acts, notifyOK)
	env.ExecuteWorkflow(workflows.RunWorkflowName, nil)
	var got approval.Run
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if got.Status != approval.StatusFailed || !strings.HasPrefix(got.Error, "refused: ") || got.Apply != nil {
		t.Errorf("status %s, error %q, apply %+v; want failed, refused, nothing applied", got.Status, got.Error, got.Apply)
	}
}

// TestApplyErrorMapping: only an apply known not to have started fails the
// run; any other error may have changed the infrastructure, so the outcome
// is unknown, for a human, and nothing is retried.
func TestApplyErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		status   approval.Status
		executed bool
	}{
		{"apply outcome unknown", temporal.NewNonRetryableApplicationError("apply claimed by attempt 1, which nobody saw end", activities.ErrApplyOutcomeUnknown, nil), approval.StatusOutcomeUnknown, true},
		{"plan unavailable", temporal.NewNonRetryableApplicationError("load approved plan: plan not found", activities.ErrPlanUnavailable, nil), approval.StatusFailed, false},
		{"workspace unknown", temporal.NewNonRetryableApplicationError(`workspace "prod-network" is not configured on this worker`, activities.ErrWorkspaceUnknown, nil), approval.StatusFailed, false},
		{"no claim store", temporal.NewNonRetryableApplicationError("no claim store configured on this worker: refusing to apply", activities.ErrClaimUnavailable, nil), approval.StatusFailed, false},
		{"heartbeat timeout", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil), approval.StatusOutcomeUnknown, true},
		{"start-to-close timeout", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_START_TO_CLOSE, nil), approval.StatusOutcomeUnknown, true},
		{"any other error", errors.New("terraform: exit status 1"), approval.StatusOutcomeUnknown, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv()
			acts := &activities.Activities{}
			worker.Register(env, testRunner(), acts)
			onNotify(env, acts, notifyOK)
			env.OnActivity(acts.Apply, mock.Anything, mock.Anything).Return(approval.ApplyResult{}, tc.err).Once()
			env.ExecuteWorkflow(workflows.RunWorkflowName, input().input(t, testWorkflowID, env.Now()))
			var got approval.Run
			if err := env.GetWorkflowResult(&got); err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.status || got.Apply == nil || got.Apply.Executed != tc.executed || got.Apply.Error == "" {
				t.Errorf("status %s, apply %+v; want %s, executed=%v, with the error recorded", got.Status, got.Apply, tc.status, tc.executed)
			}
			if tc.status == approval.StatusOutcomeUnknown && !got.Apply.OutcomeUnknown {
				t.Errorf("apply %+v; want its outcome marked unknown", got.Apply)
			}
			env.AssertExpectations(t)
			env.AssertNumberOfCalls(t, "Apply", 1)
		})
	}
}

// TestStartNamesItsVersion: a run whose input names its version (as every
// gateway's start now does) follows it without asking GetVersion, which
// would record a marker and a search-attribute upsert in every run's
// history. A version no gateway wrote is refused; one newer than the
// worker knows holds the run, its task failing to be retried by a worker
// that knows it, instead of running it under other behaviour.
func TestStartNamesItsVersion(t *testing.T) {
	start := func(h *harness, lean workflow.Version) {
		in := input(destroysNeedTwo).input(t, testWorkflowID, h.env.Now())
		in.Lean = lean // not signed: see RunInput.Lean
		h.env.ExecuteWorkflow(workflows.RunWorkflowName, in)
	}
	result := func(h *harness) approval.Run {
		t.Helper()
		var got approval.Run
		if err := h.env.GetWorkflowResult(&got); err != nil {
			t.Fatal(err)
		}
		return got
	}

	t.Run("the gateway's", func(t *testing.T) {
		h := newHarness(t)
		asked := false
		h.env.OnGetVersion("lean", workflow.DefaultVersion, workflows.StartLean).
			Run(func(mock.Arguments) { asked = true }).Return(workflows.StartLean).Maybe()
		h.update(time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob})
		h.update(2*time.Minute, workflows.UpdateApprove, "u-carol", approval.Request{Actor: carol})
		start(h, workflows.StartLean)
		if got := result(h); got.Status != approval.StatusApplied || len(h.applies) != 1 {
			t.Errorf("status %s with %d applies; want applied once", got.Status, len(h.applies))
		}
		if asked {
			t.Error("the run asked GetVersion for the version its input names: every run records a marker and an upsert for nothing")
		}
		var versions []string
		for _, e := range h.events {
			for _, a := range e.Audit {
				versions = append(versions, a.WorkflowVersion)
			}
		}
		if len(versions) == 0 || slices.ContainsFunc(versions, func(v string) bool { return v != "lean-4" }) {
			t.Errorf("the trail's entries name workflow versions %q; want lean-4 throughout", versions)
		}
	})
	t.Run("none, from an older gateway", func(t *testing.T) {
		h := newHarness(t)
		asked := false
		h.env.OnGetVersion("lean", workflow.DefaultVersion, workflows.StartLean).
			Run(func(mock.Arguments) { asked = true }).Return(workflows.StartLean)
		h.update(time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob})
		h.update(2*time.Minute, workflows.UpdateApprove, "u-carol", approval.Request{Actor: carol})
		start(h, 0)
		if got := result(h); got.Status != approval.StatusApplied || !asked {
			t.Errorf("status %s, asked GetVersion: %v; want applied, and the version asked for", got.Status, asked)
		}
	})
	t.Run("one no gateway writes", func(t *testing.T) {
		for _, lean := range []workflow.Version{workflow.DefaultVersion, 2} {
			h := newHarness(t)
			start(h, lean)
			if got := result(h); got.Status != approval.StatusFailed || !strings.Contains(got.Error, fmt.Sprintf("lean-%d,", lean)) || len(h.applies) != 0 {
				t.Errorf("lean %d: status %s, error %q, %d applies; want failed, refused naming the version, none", lean, got.Status, got.Error, len(h.applies))
			}
		}
	})
	t.Run("a newer one", func(t *testing.T) {
		h := newHarness(t)
		start(h, workflows.StartLean+1)
		err := h.env.GetWorkflowError()
		var panicked *temporal.PanicError
		if !errors.As(err, &panicked) || !strings.Contains(err.Error(), "newer than this worker knows") || len(h.applies) != 0 {
			t.Errorf("workflow error %v, %d applies; want its task failed on the version, nothing applied", err, len(h.applies))
		}
	})
}
