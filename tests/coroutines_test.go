package tests

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

// TestWaitingRunKeepsOneCoroutine: a run waiting for people, once its
// notices are out and its search attributes written, keeps only its own
// coroutine in the worker's cache (lean-4), read from the worker with
// Temporal's __stack_trace query. The upserter and the deliverer start when
// a step gives them work and end when it is done; each coroutine is a
// goroutine and its stack, for every waiting run a worker caches.
func TestWaitingRunKeepsOneCoroutine(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.waitForCoroutines(run, 1)
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
	s.waitForCoroutines(run, 1)
	s.decide(run, "approve", "t-carol", nil, http.StatusOK)
	s.waitFor(run, approval.StatusApplied)
}

// waitForCoroutines waits, for up to 10 s, until the run's workflow has
// want coroutines, and fails with its stack trace if it never does.
func (s *stack) waitForCoroutines(run gateway.RunView, want int) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := s.client.QueryWorkflow(ctx, run.ID, "", "__stack_trace")
		cancel()
		if err != nil {
			s.t.Fatalf("stack trace of %s: %v", run.ID, err)
		}
		var trace string
		if err := v.Get(&trace); err != nil {
			s.t.Fatal(err)
		}
		n := strings.Count(trace, "coroutine ")
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("run %s (%s) keeps %d coroutines; want %d:\n%s", run.ID, s.get(run).Status, n, want, trace)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
