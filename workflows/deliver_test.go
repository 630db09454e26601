package workflows_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/worker"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// delivery is a run of a workspace that plans and applies (or only gates)
// on the SDK test suite, with the plan, lock and apply activities mocked:
// plans hands out the plan outcomes in turn, the lock is free unless busy
// says until when, and every call is recorded.
type delivery struct {
	*harness
	mu       sync.Mutex
	plans    []activities.PlanOutcome
	planned  []activities.PlanInput
	busy     time.Time // the lock is held by run-other until then
	locks    []string  // "acquire", "release" in order
	applyRes approval.ApplyResult
	applies  []time.Time
}

func newDelivery(t *testing.T) *delivery {
	t.Helper()
	h := &harness{t: t, env: newEnv()}
	d := &delivery{harness: h, applyRes: approval.ApplyResult{Executed: true}}
	acts := &activities.Activities{}
	worker.Register(h.env, testRunner(), acts)
	onNotify(h.env, acts, notifyOK)
	h.env.OnActivity(acts.Plan, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.PlanInput) (activities.PlanOutcome, error) {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.planned = append(d.planned, in)
			out := d.plans[0]
			if len(d.plans) > 1 {
				d.plans = d.plans[1:]
			}
			return out, nil
		})
	h.env.OnActivity(acts.AcquireApplyLock, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.LockInput) (activities.LockResult, error) {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.locks = append(d.locks, "acquire")
			if h.env.Now().Before(d.busy) {
				return activities.LockResult{Holder: "run-other"}, nil
			}
			return activities.LockResult{Granted: true, Holder: in.RunID}, nil
		})
	h.env.OnActivity(acts.ReleaseApplyLock, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.LockInput) error {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.locks = append(d.locks, "release")
			return nil
		})
	h.env.OnActivity(acts.Apply, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ApplyInput) (approval.ApplyResult, error) {
			d.mu.Lock()
			defer d.mu.Unlock()
			h.applies = append(h.applies, in)
			d.applies = append(d.applies, h.env.Now())
			res := d.applyRes
			d.applyRes = approval.ApplyResult{Executed: true} // a stale plan is stale once
			return res, nil
		})
	return d
}

// terraformPlan is the outcome of planning a NAT gateway replacement.
func terraformPlan(ws approval.Workspace, fileSHA string, digest string) activities.PlanOutcome {
	p := approval.Summarize("json-"+fileSHA, []approval.Resource{
		{Address: "aws_nat_gateway.main", Type: "aws_nat_gateway", Actions: []approval.Action{approval.ActionReplace}, Digest: digest},
	})
	return activities.PlanOutcome{
		Result: activities.PlanPlanned, Plan: p.PlanSummary,
		Reasons: approval.Evaluate(ws, p, nil, alice, []approval.Identity{alice, bob, carol, erin}),
		Origin:  approval.Origin{Commit: "c0ffee", PlanFileSHA256: fileSHA, Binary: "tofu 1.12.6"},
	}
}

// planningInput is a signed start of a run Gatehouse plans itself.
func (d *delivery) planningInput(ws approval.Workspace) workflows.RunInput {
	in := workflows.RunInput{
		Workspace: ws, RequestedBy: alice, Message: "rotate NAT", Planning: true,
		Origin: &approval.Origin{Ref: "main", Trigger: "api"}, LockRetry: time.Minute,
	}
	return signStart(d.t, testWorkflowID, d.env.Now(), in)
}

func (d *delivery) start(in workflows.RunInput) approval.Run {
	d.t.Helper()
	setWorkflowID(d.env)
	d.env.ExecuteWorkflow(workflows.RunWorkflowName, in)
	if !d.env.IsWorkflowCompleted() {
		d.t.Fatal("workflow did not complete")
	}
	if err := d.env.GetWorkflowError(); err != nil {
		d.t.Fatalf("workflow error: %v", err)
	}
	var got approval.Run
	if err := d.env.GetWorkflowResult(&got); err != nil {
		d.t.Fatal(err)
	}
	return got
}

func terraformWorkspace() approval.Workspace {
	return approval.Workspace{
		Name: "prod-network", Mode: approval.ModeTerraform, Timing: approval.Timing{Timeout: 4 * time.Hour},
		OnTimeout: approval.OutcomeReject, AllowBypass: true,
		Rules: []approval.Rule{{Name: "platform-review", Approvers: approval.Approvers{Groups: []string{"platform"}}, MinApprovals: 2}},
	}
}

func TestPlannedRunAppliesTheApprovedPlanFileUnderTheLock(t *testing.T) {
	d := newDelivery(t)
	ws := terraformWorkspace()
	d.plans = []activities.PlanOutcome{terraformPlan(ws, "file-1", "d1")}
	d.update(time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob})
	d.update(2*time.Minute, workflows.UpdateApprove, "u-carol", approval.Request{Actor: carol})
	got := d.start(d.planningInput(ws))
	if got.Status != approval.StatusApplied || len(d.harness.applies) != 1 {
		t.Fatalf("run %s with %d applies; want applied once", got.Status, len(d.harness.applies))
	}
	if in := d.harness.applies[0]; in.PlanFileSHA256 != "file-1" || in.Commit != "c0ffee" || in.PlanSHA256 != "json-file-1" {
		t.Errorf("apply input %+v; want the approved plan file at the planned commit", in)
	}
	if got.Origin == nil || got.Origin.Ref != "main" || got.Origin.Trigger != "api" || got.Origin.Binary != "tofu 1.12.6" {
		t.Errorf("origin %+v; want the ref and trigger kept beside what planning found", got.Origin)
	}
	if len(d.locks) != 2 || d.locks[0] != "acquire" || d.locks[1] != "release" || got.Locked {
		t.Errorf("lock calls %v, locked %v; want acquire then release", d.locks, got.Locked)
	}
}

func TestPlanWithoutChangesOrFailedAsksNobody(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  activities.PlanOutcome
		want approval.Status
	}{
		{"no changes", activities.PlanOutcome{Result: activities.PlanNoChanges}, approval.StatusNoChanges},
		{"failed", activities.PlanOutcome{Result: activities.PlanFailed, Error: "Error: Unsupported argument"}, approval.StatusPlanFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDelivery(t)
			d.plans = []activities.PlanOutcome{tc.out}
			got := d.start(d.planningInput(terraformWorkspace()))
			if got.Status != tc.want || len(d.harness.applies) != 0 || len(d.locks) != 0 {
				t.Errorf("run %s, %d applies, locks %v; want %s without apply or lock", got.Status, len(d.harness.applies), d.locks, tc.want)
			}
			if tc.want == approval.StatusPlanFailed && got.Error != tc.out.Error {
				t.Errorf("error %q; want the plan's output %q", got.Error, tc.out.Error)
			}
		})
	}
}

func TestBusyWorkspaceQueuesTheApprovedRun(t *testing.T) {
	d := newDelivery(t)
	ws := terraformWorkspace()
	d.plans = []activities.PlanOutcome{terraformPlan(ws, "file-1", "d1")}
	start := d.env.Now()
	d.busy = start.Add(30 * time.Minute)
	d.update(time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob})
	d.update(2*time.Minute, workflows.UpdateApprove, "u-carol", approval.Request{Actor: carol})
	var queued approval.Run
	d.env.RegisterDelayedCallback(func() { queued = d.state() }, 10*time.Minute)
	got := d.start(d.planningInput(ws))
	if queued.Status != approval.StatusQueued || queued.QueuedBehind != "run-other" {
		t.Errorf("at 10 min: %s behind %q; want queued behind run-other", queued.Status, queued.QueuedBehind)
	}
	if got.Status != approval.StatusApplied || len(d.applies) != 1 || d.applies[0].Before(d.busy) {
		t.Errorf("run %s, applies at %v; want applied once after the lock came free at %v", got.Status, d.applies, d.busy)
	}
}

func TestCancelWhileQueuedNeverApplies(t *testing.T) {
	d := newDelivery(t)
	ws := terraformWorkspace()
	d.plans = []activities.PlanOutcome{terraformPlan(ws, "file-1", "d1")}
	d.busy = d.env.Now().Add(24 * time.Hour)
	d.update(time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob})
	d.update(2*time.Minute, workflows.UpdateApprove, "u-carol", approval.Request{Actor: carol})
	cancel := d.update(20*time.Minute, workflows.UpdateCancel, "u-cancel", approval.Request{Actor: alice, Comment: "not today"})
	got := d.start(d.planningInput(ws))
	if cancel.err != nil || got.Status != approval.StatusCancelled || len(d.applies) != 0 {
		t.Errorf("cancel %v; run %s with %d applies; want cancelled, never applied", cancel.err, got.Status, len(d.applies))
	}
}

func TestFreezeWindowHoldsTheApplyUntilItEnds(t *testing.T) {
	// Friday 19:00 UTC, inside "every Friday 18:00 for 62h".
	friday := time.Date(2026, 12, 4, 19, 0, 0, 0, time.UTC)
	for _, bypass := range []bool{false, true} {
		name := map[bool]string{false: "waits", true: "admin bypass"}[bypass]
		t.Run(name, func(t *testing.T) {
			d := newDelivery(t)
			d.env.SetStartTime(friday)
			ws := terraformWorkspace()
			ws.Freeze = []approval.FreezeWindow{{Cron: "0 18 * * FRI", Duration: 62 * time.Hour, Reason: "weekend"}}
			d.plans = []activities.PlanOutcome{terraformPlan(ws, "file-1", "d1")}
			d.update(time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob})
			d.update(2*time.Minute, workflows.UpdateApprove, "u-carol", approval.Request{Actor: carol})
			var frozen approval.Run
			d.env.RegisterDelayedCallback(func() { frozen = d.state() }, time.Hour)
			if bypass {
				d.update(2*time.Hour, workflows.UpdateBypass, "u-erin", approval.Request{Actor: erin, Comment: "outage fix"})
			}
			got := d.start(d.planningInput(ws))
			end := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC) // Monday 08:00
			if frozen.Status != approval.StatusApproved || frozen.Frozen == nil || !frozen.Frozen.Until.Equal(end) || frozen.Frozen.Reason != "weekend" {
				t.Errorf("an hour in: %s frozen %+v; want approved, frozen until %v for the weekend", frozen.Status, frozen.Frozen, end)
			}
			if got.Status != approval.StatusApplied || len(d.applies) != 1 {
				t.Fatalf("run %s with %d applies; want applied once", got.Status, len(d.applies))
			}
			switch at := d.applies[0]; {
			case !bypass && at.Before(end):
				t.Errorf("applied at %v, inside the freeze that ends %v", at, end)
			case bypass && !at.Before(end):
				t.Errorf("applied at %v despite the bypass; want before %v", at, end)
			}
		})
	}
}

func TestApprovalsOlderThanTheirTTLAreAskedAgain(t *testing.T) {
	d := newDelivery(t)
	ws := terraformWorkspace()
	ws.ApprovalTTL = time.Hour
	d.plans = []activities.PlanOutcome{terraformPlan(ws, "file-1", "d1")}
	d.busy = d.env.Now().Add(3 * time.Hour) // the approvals age while queued
	d.update(time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob})
	d.update(2*time.Minute, workflows.UpdateApprove, "u-carol", approval.Request{Actor: carol})
	var again approval.Run
	d.env.RegisterDelayedCallback(func() { again = d.state() }, 3*time.Hour+30*time.Minute)
	d.update(4*time.Hour, workflows.UpdateApprove, "u-bob-2", approval.Request{Actor: bob})
	d.update(4*time.Hour+time.Minute, workflows.UpdateApprove, "u-carol-2", approval.Request{Actor: carol})
	start := d.env.Now()
	in := d.planningInput(ws)
	in.LockRetry = 10 * time.Minute
	got := d.start(signStart(t, testWorkflowID, start, in))
	if again.Status != approval.StatusPendingApproval || again.Reasons[0].Progress() != "0/2" || again.Locked {
		t.Errorf("after the lock came free: %s at %s, locked %v; want pending at 0/2 and the lock given back",
			again.Status, again.Reasons[0].Progress(), again.Locked)
	}
	if got.Status != approval.StatusApplied || len(d.applies) != 1 || d.applies[0].Before(start.Add(4*time.Hour)) {
		t.Errorf("run %s, applies at %v; want applied once, after the fresh approvals at 4h", got.Status, d.applies)
	}
	expired := 0
	for _, a := range got.Reasons[0].Approvals {
		if a.Expired {
			expired++
		}
	}
	if expired != 2 {
		t.Errorf("%d approvals marked expired; want bob's and carol's first ones", expired)
	}
}

func TestReplanBeforeApply(t *testing.T) {
	for _, tc := range []struct {
		name        string
		replan      activities.PlanOutcome
		wantApplies int
		wantFile    string
		wantStatus  approval.Status
	}{
		{"identical changes apply the fresh plan file", terraformPlan(terraformWorkspace(), "file-2", "d1"), 1, "file-2", approval.StatusApplied},
		{"changed values go back to approval", terraformPlan(terraformWorkspace(), "file-3", "d2"), 0, "", approval.StatusTimedOut},
		{"nothing to change any more", activities.PlanOutcome{Result: activities.PlanNoChanges}, 0, "", approval.StatusNoChanges},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDelivery(t)
			ws := terraformWorkspace()
			d.plans = []activities.PlanOutcome{terraformPlan(ws, "file-1", "d1"), tc.replan}
			d.update(time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob})
			d.update(2*time.Minute, workflows.UpdateApprove, "u-carol", approval.Request{Actor: carol})
			in := d.planningInput(ws)
			in.Replan = true
			got := d.start(signStart(t, testWorkflowID, d.env.Now(), in))
			if got.Status != tc.wantStatus || len(d.applies) != tc.wantApplies {
				t.Fatalf("run %s with %d applies; want %s with %d", got.Status, len(d.applies), tc.wantStatus, tc.wantApplies)
			}
			if len(d.planned) != 2 || d.planned[1].Commit != "c0ffee" {
				t.Errorf("plans %+v; want a re-plan of the approved commit", d.planned)
			}
			if tc.wantFile != "" && d.harness.applies[0].PlanFileSHA256 != tc.wantFile {
				t.Errorf("applied %s; want the fresh plan file %s", d.harness.applies[0].PlanFileSHA256, tc.wantFile)
			}
			if tc.wantStatus == approval.StatusTimedOut {
				last := got.Rounds[len(got.Rounds)-1]
				if len(got.Rounds) != 2 || len(last.Reset) != 1 || got.Locked {
					t.Errorf("rounds %+v, locked %v; want a second round with the review reset, lock given back", got.Rounds, got.Locked)
				}
			}
		})
	}
}

func TestStaleSavedPlanGoesBackToApproval(t *testing.T) {
	d := newDelivery(t)
	ws := terraformWorkspace()
	d.plans = []activities.PlanOutcome{terraformPlan(ws, "file-1", "d1"), terraformPlan(ws, "file-2", "d1")}
	d.applyRes = approval.ApplyResult{StalePlan: true, ExitCode: 1, Error: "Saved plan is stale"}
	d.update(time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob})
	d.update(2*time.Minute, workflows.UpdateApprove, "u-carol", approval.Request{Actor: carol})
	d.update(time.Hour, workflows.UpdateApprove, "u-bob-2", approval.Request{Actor: bob})
	d.update(time.Hour+time.Minute, workflows.UpdateApprove, "u-carol-2", approval.Request{Actor: carol})
	got := d.start(d.planningInput(ws))
	if got.Status != approval.StatusApplied || len(d.applies) != 2 || len(got.Rounds) != 2 {
		t.Fatalf("run %s, %d apply attempts, %d rounds; want the stale attempt, a new round, then one apply", got.Status, len(d.applies), len(got.Rounds))
	}
	if f := d.harness.applies[1].PlanFileSHA256; f != "file-2" {
		t.Errorf("second apply of %s; want the re-made plan file-2", f)
	}
}

func TestGateOnlyRunEndsApproved(t *testing.T) {
	d := newDelivery(t)
	ws := terraformWorkspace()
	ws.Mode = approval.ModeGate
	plan := approval.Summarize("json-1", []approval.Resource{{Address: "aws_nat_gateway.main", Type: "aws_nat_gateway", Actions: []approval.Action{approval.ActionReplace}}})
	in := workflows.RunInput{Workspace: ws, RequestedBy: alice, Plan: workflows.InputPlan{PlanSummary: plan.PlanSummary},
		Reasons: approval.Evaluate(ws, plan, nil, alice, []approval.Identity{alice, bob, carol})}
	d.update(time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob})
	d.update(2*time.Minute, workflows.UpdateApprove, "u-carol", approval.Request{Actor: carol})
	got := d.start(signStart(t, testWorkflowID, d.env.Now(), in))
	if got.Status != approval.StatusApproved || !got.Done() || len(d.applies) != 0 || len(d.locks) != 0 {
		t.Errorf("run %s (done %v), %d applies, locks %v; want approved and done, nothing applied", got.Status, got.Done(), len(d.applies), d.locks)
	}
}

func TestNewerRunSupersedesAWaitingOne(t *testing.T) {
	d := newDelivery(t)
	ws := terraformWorkspace()
	d.plans = []activities.PlanOutcome{terraformPlan(ws, "file-1", "d1")}
	sup := d.update(time.Minute, workflows.UpdateSupersede, "u-sup", approval.Request{Actor: bob, Comment: "superseded by run run-newer"})
	got := d.start(d.planningInput(ws))
	if sup.err != nil || got.Status != approval.StatusSuperseded || len(d.applies) != 0 {
		t.Errorf("supersede %v; run %s with %d applies; want superseded, never applied", sup.err, got.Status, len(d.applies))
	}
}
