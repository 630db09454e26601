package workflows

import (
	"encoding/json"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gatehouse-dev/gatehouse/activities"
)

// This file is how runs on versionLean spend fewer workflow tasks, history
// events and visibility writes on the same process. Every change a workflow
// task makes is gathered until the task has nothing more to do, and then
// leaves the task once: one search-attribute upsert (keepVisible), and one
// notice for everything the task queued, its record-only notices riding on
// the last (the deliverer). A notice of a task nobody waits on (a timer's,
// an apply's end) is first tried as a local activity, within the task.
// Notices still go out in order, one at a time, each with the Slack
// messages the one before posted; an older run keeps its one upsert per
// change and one notice per batch.

// settle waits until the workflow task has nothing more to do: no local
// activity is running (the task goes on once it returns) and a whole round
// of the workflow's coroutines publishes and queues nothing more. The main
// loop may take several rounds to reach the wait that ends the task.
func (r *run) settle(ctx workflow.Context) error {
	for {
		if err := workflow.Await(ctx, func() bool { return r.localBusy == 0 }); err != nil {
			return err
		}
		seen := r.changes
		if err := yieldOnce(ctx); err != nil {
			return err
		}
		if r.changes == seen && r.localBusy == 0 {
			return nil
		}
	}
}

// yieldOnce lets every other coroutine of the workflow take a turn.
func yieldOnce(ctx workflow.Context) error {
	turned := false
	return workflow.Await(ctx, func() bool {
		done := turned
		turned = true
		return done
	})
}

// startDeliverer starts, in lean runs, the coroutine that delivers the
// notices send queued: once the task has settled, it folds what is queued
// (foldRecords) and delivers it, notice after notice. It runs disconnected,
// so the notices of a run cancelled in Temporal, and their audit entries,
// still go out.
func (r *run) startDeliverer(ctx workflow.Context) {
	r.deliverer = r.whenSettled(ctx, func() bool { return len(r.pending) > 0 }, func(ctx workflow.Context) {
		queued := len(r.pending)
		batch := foldRecords(r.pending)
		r.pending = nil
		for _, e := range batch {
			e = r.stamp(e)
			e.Messages = slices.Clone(r.state.Messages)
			r.deliverNotice(ctx, e)
		}
		r.delivering -= queued
	})
}

// settled is a coroutine that runs do each time ready holds and the task
// has settled: how both the upsert and the deliverer leave a task once.
type settled struct {
	ready   func() bool
	do      func(workflow.Context)
	running bool
}

// whenSettled returns, in lean runs, the settled coroutine for ready and
// do. Before leanV4 it starts it now, for the run's whole life; on leanV4
// poke starts it when there is work, and it ends once ready no longer
// holds, so a waiting run keeps no coroutine of it in the worker's cache.
// It runs disconnected, so the notices and the visibility of a run
// cancelled in Temporal still go out.
func (r *run) whenSettled(ctx workflow.Context, ready func() bool, do func(workflow.Context)) *settled {
	if !r.lean {
		return nil
	}
	s := &settled{ready: ready, do: do}
	if r.leanAt >= leanV4 {
		return s
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	workflow.Go(dctx, func(ctx workflow.Context) {
		for {
			if err := workflow.Await(ctx, ready); err != nil {
				return
			}
			if err := r.settle(ctx); err != nil {
				return
			}
			do(ctx)
		}
	})
	return s
}

// poke starts s on leanV4 if it is not running: a step just gave it work.
func (r *run) poke(ctx workflow.Context, s *settled) {
	if s == nil || s.running || r.leanAt < leanV4 {
		return
	}
	s.running = true
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	workflow.Go(dctx, func(ctx workflow.Context) {
		defer func() { s.running = false }()
		for s.ready() {
			if err := r.settle(ctx); err != nil {
				return
			}
			s.do(ctx)
		}
	})
}

// deliverNotice delivers one stamped notice. In a workflow task that
// answers an Update it runs as an activity of its own: the answer does not
// wait for Slack, and the notice (with its audit entries) is scheduled only
// once the task that decided it is in the history; a local activity there
// would write the trail for an Update the task may yet lose. In the start's
// task (leanV3) a local activity records it (the trail, the log) and the
// workspace's channels, if any, go to an activity: the run's start is in
// the history before its first task runs, and the trail ignores an entry it
// already has when the task runs again. In any other task it is first tried
// as a local activity, and what that attempt could not deliver goes on,
// durably, in a regular activity that starts where it stopped.
func (r *run) deliverNotice(ctx workflow.Context, e activities.Event) {
	var a *activities.Activities
	task := workflow.GetInfo(ctx).GetCurrentHistoryLength()
	if task == r.answeredIn {
		r.notify(ctx, e)
		return
	}
	// The messages are rendered from the run, which the attempt cannot
	// query: the query would wait for this very task.
	//workflowcheck:ignore encoding/json's map order is sorted, and the bytes go only to a local activity's input, which is not in the history
	run, err := json.Marshal(r.state)
	if err != nil {
		r.notify(ctx, e)
		return
	}
	n := activities.LocalNotice{Event: e, Run: run, RecordOnly: task == r.startedIn}
	lctx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		// One attempt: the retries are NotifyFrom's, which keep their
		// progress in heartbeats.
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var out activities.NotifyOutcome
	r.localBusy++
	err = workflow.ExecuteLocalActivity(lctx, a.NotifyLocally, n).Get(ctx, &out)
	r.localBusy--
	switch {
	case err != nil:
		// The attempt did not answer (timed out, say): what it delivered
		// is not known, so the notice starts over.
		workflow.GetLogger(ctx).Warn("local notice attempt failed; retrying as an activity", "event", e.ID, "error", err)
		r.notify(ctx, e)
	case out.Unfinished == nil:
		r.delivered(ctx, e, out.Result)
	case out.Final:
		workflow.GetLogger(ctx).Warn("notice not delivered", "event", e.ID, "kind", e.Kind, "error", out.Error)
		r.notDelivered(ctx, e, out.Result, out.Error)
	default:
		r.notifyWith(ctx, e, a.NotifyFrom, activities.NotifyInput{Event: e, From: *out.Unfinished})
	}
}
