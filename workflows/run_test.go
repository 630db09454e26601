package workflows_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/worker"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

func intp(i int) *int { return &i }

var (
	alice  = approval.Identity{ID: "alice", Email: "alice@example.com", Source: approval.SourceSSO, Groups: []string{"platform"}, Roles: []approval.Role{approval.RoleApprover}}
	bob    = approval.Identity{ID: "bob", Email: "bob@example.com", Source: approval.SourceSSO, Groups: []string{"platform"}, Roles: []approval.Role{approval.RoleApprover}}
	carol  = approval.Identity{ID: "carol", Email: "carol@example.com", Source: approval.SourceSSO, Groups: []string{"platform"}, Roles: []approval.Role{approval.RoleApprover}}
	victor = approval.Identity{ID: "victor", Email: "victor@example.com", Groups: []string{"platform"}, Roles: []approval.Role{approval.RoleViewer}}
)

func input(rules ...approval.Rule) draft {
	return draft{
		Workspace: approval.Workspace{
			Name: "prod-network", Environment: "production",
			Timing: approval.Timing{Timeout: 4 * time.Hour}, OnTimeout: approval.OutcomeReject, Rules: rules,
		},
		RequestedBy: alice,
		Message:     "rotate NAT",
		Plan: approval.Summarize("4f2c", []approval.Resource{
			{Address: "aws_nat_gateway.main", Type: "aws_nat_gateway", Actions: []approval.Action{approval.ActionReplace}},
		}),
		Directory: []approval.Identity{alice, bob, carol, victor},
	}
}

var destroysNeedTwo = approval.Rule{
	Name: "destroys-need-two", When: approval.Conditions{DestroysGT: intp(0)},
	Approvers: approval.Approvers{Groups: []string{"platform"}}, MinApprovals: 2,
}

// newEnv returns a test environment that logs only warnings and errors,
// whose run has the ID the tests sign for.
func newEnv() *testsuite.TestWorkflowEnvironment {
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	env := suite.NewTestWorkflowEnvironment()
	setWorkflowID(env)
	return env
}

// harness is one workflow run on the SDK's time-skipping test environment
// with the activities mocked and their calls counted.
type harness struct {
	t   *testing.T
	env *testsuite.TestWorkflowEnvironment
	// mu guards what the mocks record: notices are delivered beside the
	// run, so mocked activities run at the same time.
	mu         sync.Mutex
	applies    []activities.ApplyInput
	events     []activities.Event
	eventTimes []struct {
		kind activities.EventKind
		at   time.Time
	}
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, env: newEnv()}
	acts := &activities.Activities{}
	worker.Register(h.env, testRunner(), acts)
	onNotify(h.env, acts, func(e activities.Event) (activities.NotifyResult, error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.events = append(h.events, e)
		h.eventTimes = append(h.eventTimes, struct {
			kind activities.EventKind
			at   time.Time
		}{e.Kind, h.env.Now()})
		return activities.NotifyResult{}, nil
	})
	h.env.OnActivity(acts.Apply, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ApplyInput) (approval.ApplyResult, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.applies = append(h.applies, in)
			return approval.ApplyResult{Executed: true, Command: []string{"apply"}}, nil
		})
	return h
}

// outcome is what an Update answered: its result, and the run as the
// state query showed it when the Update completed.
type outcome struct {
	res workflows.DecisionResult
	run approval.Run
	err error
	ok  bool
	// rejected says the validator refused the Update: it never reached
	// history.
	rejected bool
	// bytes is the size of the result's payload, as written to history.
	bytes int
}

// update sends a decision, signed by the gateway, at the given offset from
// the start and records its outcome for later assertions.
func (h *harness) update(after time.Duration, name, id string, arg any) *outcome {
	o := &outcome{}
	h.env.RegisterDelayedCallback(func() {
		update(h.t, h.env, name, id, arg, h.callbacks(o))
	}, after)
	return o
}

// send sends, at the given offset from the start, an Update whose argument
// build makes at the time it is sent, exactly as built: the gateway signs
// nothing, so forgeries can be tried.
func (h *harness) send(after time.Duration, name, id string, build func(now time.Time) any) *outcome {
	o := &outcome{}
	h.env.RegisterDelayedCallback(func() {
		h.env.UpdateWorkflow(name, id, h.callbacks(o), build(h.env.Now()))
	}, after)
	return o
}

func (h *harness) callbacks(o *outcome) *testsuite.TestUpdateCallback {
	return &testsuite.TestUpdateCallback{
		OnReject: func(err error) { o.err, o.ok, o.rejected = err, true, true },
		OnAccept: func() {},
		OnComplete: func(result any, err error) {
			o.ok = true
			if err != nil {
				o.err = err
				return
			}
			o.res = result.(workflows.DecisionResult)
			o.bytes = payloadSize(h.t, o.res)
			o.run = h.state()
		},
	}
}

// state is the run as the state query shows it now.
func (h *harness) state() approval.Run {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(workflows.QueryState)
	if err != nil {
		h.t.Errorf("query %s: %v", workflows.QueryState, err)
		return approval.Run{}
	}
	var run approval.Run
	if err := v.Get(&run); err != nil {
		h.t.Error(err)
	}
	return run
}

// run starts the draft's run, signed by the gateway, and runs it to its end.
func (h *harness) run(d draft) approval.Run {
	h.t.Helper()
	h.env.ExecuteWorkflow(workflows.RunWorkflowName, d.input(h.t, testWorkflowID, h.env.Now()))
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	if err := h.env.GetWorkflowError(); err != nil {
		h.t.Fatalf("workflow error: %v", err)
	}
	var got approval.Run
	if err := h.env.GetWorkflowResult(&got); err != nil {
		h.t.Fatal(err)
	}
	return got
}

func errType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

func TestTwoApprovalsApplyOnce(t *testing.T) {
	h := newHarness(t)
	first := h.update(time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob, Comment: "looks right"})
	second := h.update(2*time.Minute, workflows.UpdateApprove, "u-carol", approval.Request{Actor: carol})
	got := h.run(input(destroysNeedTwo))

	if got.Status != approval.StatusApplied {
		t.Fatalf("status %s; want applied", got.Status)
	}
	if len(h.applies) != 1 || h.applies[0].PlanSHA256 != "4f2c" || h.applies[0].Workspace != "prod-network" {
		t.Errorf("applies = %+v; want exactly one of plan 4f2c", h.applies)
	}
	if first.err != nil || first.run.Reasons[0].Progress() != "1/2" || first.res.Status != approval.StatusPendingApproval || first.res.DecisionID != "u-bob" {
		t.Errorf("first approval returned %v, %+v, run at %s; want decision u-bob, the run at 1/2, pending", first.err, first.res, first.run.Reasons[0].Progress())
	}
	if second.err != nil || second.res.Status != approval.StatusApproved {
		t.Errorf("second approval returned %v, %+v; want the run approved", second.err, second.res)
	}
	for _, o := range []*outcome{first, second} {
		if o.bytes == 0 || o.bytes >= maxResultBytes {
			t.Errorf("an Update result is %d bytes; want under %d", o.bytes, maxResultBytes)
		}
	}
	if len(got.Decisions) != 2 || got.Decisions[0].ID != "u-bob" || got.Decisions[0].Comment != "looks right" {
		t.Errorf("decisions = %+v; want bob's (id u-bob) then carol's", got.Decisions)
	}
}

func TestRejectNeverApplies(t *testing.T) {
	h := newHarness(t)
	h.update(time.Minute, workflows.UpdateApprove, "u1", approval.Request{Actor: bob})
	rej := h.update(2*time.Minute, workflows.UpdateReject, "u2", approval.Request{Actor: carol, Comment: "not during the freeze"})
	got := h.run(input(destroysNeedTwo))
	if got.Status != approval.StatusRejected || len(h.applies) != 0 {
		t.Errorf("status %s with %d applies; want rejected and none", got.Status, len(h.applies))
	}
	if rej.err != nil || rej.res.Status != approval.StatusRejected || rej.run.Status != approval.StatusRejected {
		t.Errorf("reject returned %v, %+v; want the rejected run", rej.err, rej.res)
	}
}

func TestCancelByRequester(t *testing.T) {
	h := newHarness(t)
	h.update(time.Minute, workflows.UpdateCancel, "c1", approval.Request{Actor: alice, Comment: "wrong branch"})
	got := h.run(input(destroysNeedTwo))
	if got.Status != approval.StatusCancelled || len(h.applies) != 0 {
		t.Errorf("status %s with %d applies; want cancelled and none", got.Status, len(h.applies))
	}
}

func TestTimeoutFailsClosedAtFourHours(t *testing.T) {
	h := newHarness(t)
	start := h.env.Now()
	h.update(time.Minute, workflows.UpdateApprove, "u1", approval.Request{Actor: bob})
	late := h.update(4*time.Hour+time.Second, workflows.UpdateApprove, "u2", approval.Request{Actor: carol})
	got := h.run(input(destroysNeedTwo))
	if got.Status != approval.StatusTimedOut || got.Outcome != approval.OutcomeReject || len(h.applies) != 0 {
		t.Errorf("status %s outcome %s with %d applies; want timed_out/reject and none", got.Status, got.Outcome, len(h.applies))
	}
	if waited := got.UpdatedAt.Sub(start); waited < 4*time.Hour || waited > 4*time.Hour+time.Minute {
		t.Errorf("timed out after %v; want 4h", waited)
	}
	if late.ok && errType(late.err) != string(approval.CodeConflict) {
		t.Errorf("approval after the timeout: %v; want a conflict or no delivery", late.err)
	}
}

func TestTimeoutOutcomeCancel(t *testing.T) {
	h := newHarness(t)
	in := input(destroysNeedTwo)
	in.Workspace.OnTimeout = approval.OutcomeCancel
	in.Workspace.Timing.Timeout = 30 * time.Minute
	got := h.run(in)
	if got.Status != approval.StatusTimedOut || got.Outcome != approval.OutcomeCancel {
		t.Errorf("status %s outcome %s; want timed_out/cancel", got.Status, got.Outcome)
	}
}

func TestValidatorRefusesSelfApprovalAndViewer(t *testing.T) {
	h := newHarness(t)
	self := h.update(time.Minute, workflows.UpdateApprove, "self", approval.Request{Actor: alice})
	viewer := h.update(2*time.Minute, workflows.UpdateApprove, "viewer", approval.Request{Actor: victor})
	noComment := h.update(3*time.Minute, workflows.UpdateReject, "nc", approval.Request{Actor: bob})
	h.update(4*time.Minute, workflows.UpdateCancel, "end", approval.Request{Actor: alice, Comment: "done testing"})
	got := h.run(input(destroysNeedTwo))

	for name, tc := range map[string]struct {
		o    *outcome
		want approval.Code
	}{"self-approval": {self, approval.CodeForbidden}, "viewer": {viewer, approval.CodeForbidden}, "reject without comment": {noComment, approval.CodeInvalid}} {
		if !tc.o.ok || errType(tc.o.err) != string(tc.want) {
			t.Errorf("%s: got %v (type %q); want a rejected update of type %q", name, tc.o.err, errType(tc.o.err), tc.want)
		}
	}
	// Rejected Updates never reach history: only the cancel is recorded.
	if len(got.Decisions) != 1 || got.Decisions[0].Kind != approval.DecisionCancel {
		t.Errorf("decisions = %+v; want only the cancel", got.Decisions)
	}
}

func TestDuplicateUpdateIDCountsOnce(t *testing.T) {
	h := newHarness(t)
	a := h.update(time.Minute, workflows.UpdateApprove, "same-key", approval.Request{Actor: bob})
	// A retry carries the same Update ID; even a different body must not
	// count again: the ID, not the payload, identifies the decision.
	b := h.update(2*time.Minute, workflows.UpdateApprove, "same-key", approval.Request{Actor: carol})
	c := h.update(3*time.Minute, workflows.UpdateApprove, "other-key", approval.Request{Actor: bob})
	h.update(4*time.Minute, workflows.UpdateCancel, "end", approval.Request{Actor: alice, Comment: "stop"})
	got := h.run(input(destroysNeedTwo))
	if a.err != nil || b.err != nil || c.err != nil {
		t.Fatalf("errors %v, %v, %v; want none", a.err, b.err, c.err)
	}
	approvals := 0
	for _, d := range got.Decisions {
		if d.Kind == approval.DecisionApprove {
			approvals++
		}
	}
	if approvals != 1 || got.Reasons[0].Approvals[0].DecisionID != "same-key" || got.Reasons[0].Approvals[0].UserID != "bob" {
		t.Errorf("recorded %d approvals (%+v); want bob once, under id same-key", approvals, got.Decisions)
	}
	if b.run.Reasons[0].Progress() != "1/2" {
		t.Errorf("the retried Update answered %s; want the first answer, 1/2", b.run.Reasons[0].Progress())
	}
}

func TestNoMatchingRuleAppliesWithoutWaiting(t *testing.T) {
	h := newHarness(t)
	in := input(approval.Rule{Name: "big", When: approval.Conditions{AddsGT: intp(100)}, Approvers: approval.Approvers{Users: []approval.UserID{"bob"}}, MinApprovals: 1})
	start := h.env.Now()
	got := h.run(in)
	if got.Status != approval.StatusApplied || len(h.applies) != 1 {
		t.Errorf("status %s with %d applies; want applied once", got.Status, len(h.applies))
	}
	if got.UpdatedAt.Sub(start) > time.Minute {
		t.Errorf("run took %v of workflow time; want no wait", got.UpdatedAt.Sub(start))
	}
}

func TestFailedApplyIsRecorded(t *testing.T) {
	env := newEnv()
	acts := &activities.Activities{}
	worker.Register(env, testRunner(), acts)
	onNotify(env, acts, notifyOK)
	env.OnActivity(acts.Apply, mock.Anything, mock.Anything).Return(approval.ApplyResult{}, temporal.NewNonRetryableApplicationError("load approved plan: plan not found", activities.ErrPlanUnavailable, nil)).Once()
	env.ExecuteWorkflow(workflows.RunWorkflowName, input().input(t, testWorkflowID, env.Now()))
	var got approval.Run
	if err := env.GetWorkflowResult(&got); err != nil {
		t.Fatal(err)
	}
	if got.Status != approval.StatusFailed || got.Apply == nil || got.Apply.Error == "" {
		t.Errorf("status %s apply %+v; want failed with the error recorded", got.Status, got.Apply)
	}
	env.AssertExpectations(t)
}

func TestQueryState(t *testing.T) {
	h := newHarness(t)
	var queried approval.Run
	h.env.RegisterDelayedCallback(func() {
		v, err := h.env.QueryWorkflow(workflows.QueryState)
		if err != nil {
			t.Errorf("query: %v", err)
			return
		}
		if err := v.Get(&queried); err != nil {
			t.Error(err)
		}
	}, time.Minute)
	h.update(2*time.Minute, workflows.UpdateCancel, "end", approval.Request{Actor: alice, Comment: "stop"})
	h.run(input(destroysNeedTwo))
	if queried.Status != approval.StatusPendingApproval || queried.Workspace != "prod-network" || len(queried.Reasons) != 1 {
		t.Errorf("queried %+v; want the pending run with one reason", queried)
	}
}
