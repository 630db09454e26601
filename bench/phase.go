package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
)

// side is one of the two things measured: the bare workflow or Gatehouse.
type side interface {
	name() string
	// start starts run i of a batch and returns once it waits for people.
	start(ctx context.Context, i int) (runRef, error)
	// approve takes decision n (0-based) on the run and returns once it is
	// recorded.
	approve(ctx context.Context, r runRef, n int) error
	decisionsPerRun() int
	// closed returns once the run's workflow has completed.
	closed(ctx context.Context, r runRef) error
	// check verifies, after close, that the run applied.
	check(ctx context.Context, r runRef) error
	// applyActivity is the activity type that applies.
	applyActivity() string
}

// sample is one side's measurements over the batches of one repeat.
type sample struct {
	Runs      int
	Decisions int
	// StartWall and DecideWall add up the batches' phases: starting every
	// run of a batch, and taking every decision on them.
	StartWall, DecideWall time.Duration
	CPU                   time.Duration
	StartLatency          []time.Duration
	ApproveLatency        []time.Duration
	ToApplied, ToClosed   []time.Duration
	Events, Bytes         int
	EventTypes, TypeBytes map[string]int
}

// batch runs n runs of s through its life with conc requests at a time:
// start them all, decide them all, wait until every one has closed. CPU is
// counted over exactly these phases; reading the histories afterwards,
// which only the bench does, is not.
func batch(ctx context.Context, s side, c client.Client, n, conc int, into *sample) error {
	cpu0, err := cpuTime()
	if err != nil {
		return err
	}
	runs := make([]runRef, n)
	startLat := make([]time.Duration, n)
	begin := time.Now()
	err = forEach(ctx, n, conc, func(ctx context.Context, i int) error {
		t := time.Now()
		r, err := s.start(ctx, i)
		runs[i], startLat[i] = r, time.Since(t)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: start: %w", s.name(), err)
	}
	startWall := time.Since(begin)

	// Each run's close is awaited from its last decision on, beside the
	// other runs' decisions: the decision phase ends with the last decision.
	lastDecision := make([]time.Time, n)
	closedAt := make([]time.Time, n)
	approveLat := make([][]time.Duration, n)
	var waiters sync.WaitGroup
	closeErrs := make([]error, n)
	begin = time.Now()
	err = forEach(ctx, n, conc, func(dctx context.Context, i int) error {
		for d := range s.decisionsPerRun() {
			t := time.Now()
			if err := s.approve(dctx, runs[i], d); err != nil {
				return err
			}
			approveLat[i] = append(approveLat[i], time.Since(t))
		}
		lastDecision[i] = time.Now()
		// ctx, not dctx: the wait outlives the decision phase.
		waiters.Go(func() {
			closeErrs[i] = s.closed(ctx, runs[i])
			closedAt[i] = time.Now()
		})
		return nil
	})
	decideWall := time.Since(begin)
	waiters.Wait()
	if err != nil {
		return fmt.Errorf("%s: decide: %w", s.name(), err)
	}
	for _, err := range closeErrs {
		if err != nil {
			return fmt.Errorf("%s: close: %w", s.name(), err)
		}
	}
	cpu1, err := cpuTime()
	if err != nil {
		return err
	}

	into.Runs += n
	into.Decisions += n * s.decisionsPerRun()
	into.StartWall += startWall
	into.DecideWall += decideWall
	into.CPU += cpu1 - cpu0
	into.StartLatency = append(into.StartLatency, startLat...)
	for i, r := range runs {
		into.ApproveLatency = append(into.ApproveLatency, approveLat[i]...)
		into.ToClosed = append(into.ToClosed, closedAt[i].Sub(lastDecision[i]))
		if err := s.check(ctx, r); err != nil {
			return fmt.Errorf("%s: %w", s.name(), err)
		}
		h, err := readHistory(ctx, c, r.ID, s.applyActivity())
		if err != nil {
			return err
		}
		if h.AppliedAt.IsZero() {
			return fmt.Errorf("%s: run %s: no completed %s activity in its history", s.name(), r.ID, s.applyActivity())
		}
		into.ToApplied = append(into.ToApplied, h.AppliedAt.Sub(lastDecision[i]))
		into.Events += h.Events
		into.Bytes += h.Bytes
		if into.EventTypes == nil {
			into.EventTypes, into.TypeBytes = map[string]int{}, map[string]int{}
		}
		for t, n := range h.Types {
			into.EventTypes[t] += n
		}
		for t, n := range h.TypeBytes {
			into.TypeBytes[t] += n
		}
	}
	return nil
}
