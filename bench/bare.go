package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/workflow"
)

// The ceiling: the least a Temporal workflow can do to gate an apply. It
// waits for its approvals as Updates (or a timer, as a run waits for its
// deadline), runs one trivial activity and completes. Whatever Gatehouse
// costs beyond this is Gatehouse's own.
const (
	bareTaskQueue    = "gatehouse-bench-bare"
	bareWorkflowName = "BenchBareRun"
	bareApplyName    = "BenchBareApply"
	bareUpdateName   = "approve"
	bareQueryName    = "state"
	bareTimeout      = 4 * time.Hour
)

// bareInput says how many approvals the bare run waits for: as many as the
// Gatehouse run needs, so both sides take the same number of decisions.
type bareInput struct {
	Approvals int `json:"approvals"`
}

// bareWorkflow is the ceiling's workflow.
func bareWorkflow(ctx workflow.Context, in bareInput) (string, error) {
	state, approvals := "waiting", 0
	if err := workflow.SetQueryHandler(ctx, bareQueryName, func() (string, error) { return state, nil }); err != nil {
		return "", err
	}
	if err := workflow.SetUpdateHandler(ctx, bareUpdateName, func(_ workflow.Context, _ string) (int, error) {
		approvals++
		return approvals, nil
	}); err != nil {
		return "", err
	}
	ok, err := workflow.AwaitWithTimeout(ctx, bareTimeout, func() bool { return approvals >= in.Approvals })
	if err != nil {
		return "", err
	}
	if !ok {
		return "timed_out", nil
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	if err := workflow.ExecuteActivity(actx, bareApplyName).Get(ctx, nil); err != nil {
		return "", err
	}
	state = "applied"
	// An Update still being answered must not find the run closed.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return "", err
	}
	return state, nil
}

// bareApply is the trivial activity: the apply that does nothing.
func bareApply(context.Context) error { return nil }

// bareSide drives the ceiling with the SDK client directly.
type bareSide struct {
	c         client.Client
	approvals int
	prefix    string       // makes workflow IDs unique per bench process
	seq       atomic.Int64 // and this, unique within it
	queue     string       // the bare worker's task queue, this process's own
}

func (b *bareSide) name() string          { return "bare" }
func (b *bareSide) applyActivity() string { return bareApplyName }
func (b *bareSide) decisionsPerRun() int  { return b.approvals }

// start starts run i and returns once it waits for approval: the first
// workflow task has run, as Gatehouse's start answers only after it has
// read the new run's state with a query.
func (b *bareSide) start(ctx context.Context, _ int) (runRef, error) {
	id := fmt.Sprintf("%s-%d", b.prefix, b.seq.Add(1))
	wr, err := b.c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: b.queue},
		bareWorkflowName, bareInput{Approvals: b.approvals})
	if err != nil {
		return runRef{}, fmt.Errorf("start bare run %s: %w", id, err)
	}
	v, err := b.c.QueryWorkflow(ctx, wr.GetID(), "", bareQueryName)
	if err != nil {
		return runRef{}, fmt.Errorf("query bare run %s: %w", id, err)
	}
	var state string
	if err := v.Get(&state); err != nil || state != "waiting" {
		return runRef{}, fmt.Errorf("bare run %s: state %q (%v); want waiting", id, state, err)
	}
	return runRef{ID: id}, nil
}

// approve sends decision n (0-based) as an Update and waits for its result.
func (b *bareSide) approve(ctx context.Context, r runRef, n int) error {
	id := r.ID
	h, err := b.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   id,
		UpdateName:   bareUpdateName,
		Args:         []any{approverOf(n)},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return fmt.Errorf("approve bare run %s: %w", id, err)
	}
	var count int
	if err := h.Get(ctx, &count); err != nil {
		return fmt.Errorf("approve bare run %s: %w", id, err)
	}
	return nil
}

// closed waits for the run's workflow to complete and checks it applied.
func (b *bareSide) closed(ctx context.Context, r runRef) error {
	id := r.ID
	var state string
	if err := b.c.GetWorkflow(ctx, id, "").Get(ctx, &state); err != nil {
		return fmt.Errorf("bare run %s: %w", id, err)
	}
	if state != "applied" {
		return fmt.Errorf("bare run %s ended %q; want applied", id, state)
	}
	return nil
}

// check has nothing more to verify: closed read the result.
func (b *bareSide) check(context.Context, runRef) error { return nil }
