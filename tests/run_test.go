package tests

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/activities/audit"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

func TestTwoApprovalsApplyExactlyOnce(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	if run.Status != approval.StatusPendingApproval || run.RequestedBy != "alice" || run.Plan.Destroys != 2 || run.Plan.Replaces != 1 {
		t.Fatalf("new run %+v; want pending, by alice, 2 destroys (1 replace)", run)
	}
	if len(run.Reasons) != 1 || run.Reasons[0].Progress != "0/2" || run.Deadline == nil {
		t.Fatalf("reasons %+v deadline %v; want destroys-need-two at 0/2 with a deadline", run.Reasons, run.Deadline)
	}

	// The pending run shows up in the list filtered by status (visibility is
	// eventually consistent: poll briefly).
	deadline := time.Now().Add(10 * time.Second)
	for {
		var list struct {
			Runs []struct{ ID, Status string } `json:"runs"`
		}
		s.call("GET", "/api/v1/workspaces/prod-network/runs?status=pending_approval", "t-victor", nil).decode(t, &list)
		if len(list.Runs) == 1 && list.Runs[0].ID == run.ID && list.Runs[0].Status == "pending_approval" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("list = %+v; want the pending run", list)
		}
		time.Sleep(100 * time.Millisecond)
	}

	var after gateway.RunView
	s.decide(run, "approve", "t-bob", map[string]string{"comment": "checked the NAT swap"}, http.StatusOK).decode(t, &after)
	if after.Status != approval.StatusPendingApproval || after.Reasons[0].Progress != "1/2" {
		t.Fatalf("after bob: %s %s; want pending at 1/2", after.Status, after.Reasons[0].Progress)
	}
	if len(s.applied()) != 0 {
		t.Fatal("applied after one approval")
	}
	s.decide(run, "approve", "t-carol", nil, http.StatusOK)
	final := s.waitFor(run, approval.StatusApplied)

	lines := s.applied()
	if len(lines) != 1 || !strings.Contains(lines[0], run.ID) || !strings.Contains(lines[0], run.Plan.SHA256) {
		t.Fatalf("apply log %q; want one line with run %s and plan %s", lines, run.ID, run.Plan.SHA256)
	}
	if final.Apply == nil || !final.Apply.Executed || final.Apply.ExitCode != 0 || final.Apply.LogSHA256 == "" {
		t.Errorf("apply result %+v; want an executed, successful apply of the plan with its output kept", final.Apply)
	}
	// The output is an artifact beside the plan, served to those who may
	// read the run and not kept in the run itself.
	logs := s.call("GET", s.runPath(run)+"/logs", "t-victor", nil)
	if logs.status != http.StatusOK || !strings.Contains(string(logs.body), run.Plan.SHA256) {
		t.Errorf("GET logs: %d %q; want 200 with the apply's output naming the plan", logs.status, logs.body)
	}
	if r := s.call("GET", s.runPath(run)+"/logs", "t-dave", nil); r.status != http.StatusNotFound {
		t.Errorf("GET logs by dave, who prod-network does not name: %d; want 404", r.status)
	}

	var decisions struct {
		Decisions []gateway.DecisionView `json:"decisions"`
	}
	s.call("GET", s.runPath(run)+"/approvals", "t-alice", nil).decode(t, &decisions)
	if len(decisions.Decisions) != 2 || decisions.Decisions[0].UserID != "bob" || decisions.Decisions[0].UserEmail != "bob@example.com" ||
		decisions.Decisions[0].Comment != "checked the NAT swap" || decisions.Decisions[0].RunID != run.ID || decisions.Decisions[1].UserID != "carol" ||
		decisions.Decisions[0].Channel != "api" || decisions.Decisions[0].PlanSHA256 != run.Plan.SHA256 {
		t.Errorf("decisions %+v; want bob's then carol's approvals", decisions.Decisions)
	}
	var reqs struct {
		Reasons []gateway.ReasonView `json:"reasons"`
	}
	s.call("GET", s.runPath(run)+"/approval-requirements", "t-alice", nil).decode(t, &reqs)
	if len(reqs.Reasons) != 1 || !reqs.Reasons[0].Approved || reqs.Reasons[0].Progress != "2/2" {
		t.Errorf("requirements %+v; want the reason approved at 2/2", reqs.Reasons)
	}
}

func TestRejectCancelAndTimeoutNeverApply(t *testing.T) {
	// Long enough for the decisions below to land first on a loaded machine.
	s := newStack(t, stackOptions{timeout: "4s"})

	rejected := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(rejected, "reject", "t-bob", map[string]string{"comment": "not during the freeze"}, http.StatusOK)
	got := s.waitFor(rejected, approval.StatusRejected)
	if len(got.Decisions) != 1 || got.Decisions[0].Decision != approval.DecisionReject || got.Decisions[0].Comment != "not during the freeze" {
		t.Errorf("decisions %+v; want bob's rejection with its comment", got.Decisions)
	}

	cancelled := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(cancelled, "cancel", "t-erin", map[string]string{"message": "change freeze"}, http.StatusOK)
	s.waitFor(cancelled, approval.StatusCancelled)

	timedOut := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(timedOut, "approve", "t-bob", nil, http.StatusOK)
	got = s.waitFor(timedOut, approval.StatusTimedOut)
	if got.Outcome != approval.OutcomeCancel {
		t.Errorf("outcome %q; want cancel (the workspace's on_timeout)", got.Outcome)
	}
	// Fail closed: a late approval cannot revive it.
	s.decide(timedOut, "approve", "t-carol", nil, http.StatusConflict)

	if lines := s.applied(); len(lines) != 0 {
		t.Errorf("apply ran %d times (%q); want never", len(lines), lines)
	}
}

func TestWorkerRestartBetweenApprovals(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)

	s.worker.Stop()
	s.startWorker() // a fresh worker: the run's state is rebuilt from history

	var after gateway.RunView
	s.decide(run, "approve", "t-carol", nil, http.StatusOK).decode(t, &after)
	if after.Reasons[0].Progress != "2/2" {
		t.Errorf("progress after restart %s; want 2/2 (bob's approval kept)", after.Reasons[0].Progress)
	}
	s.waitFor(run, approval.StatusApplied)
	if lines := s.applied(); len(lines) != 1 {
		t.Errorf("apply ran %d times; want once", len(lines))
	}
}

func TestNoMatchingRuleAppliesAtOnce(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("staging-app", "t-alice", "add-only.json")
	got := s.waitFor(run, approval.StatusApplied)
	if len(got.Reasons) != 0 || len(got.Decisions) != 0 {
		t.Errorf("reasons %v decisions %v; want none", got.Reasons, got.Decisions)
	}
	if lines := s.applied(); len(lines) != 1 {
		t.Errorf("apply ran %d times; want once", len(lines))
	}
}

func TestIdempotencyKeys(t *testing.T) {
	s := newStack(t, stackOptions{})
	body := map[string]any{"plan": readPlan(t, "prod-network.json")}
	first := s.call("POST", "/api/v1/workspaces/prod-network/runs", "t-alice", body, "Idempotency-Key", "pipeline-42")
	again := s.call("POST", "/api/v1/workspaces/prod-network/runs", "t-alice", body, "Idempotency-Key", "pipeline-42")
	var a, b gateway.RunView
	first.decode(t, &a)
	again.decode(t, &b)
	if first.status != http.StatusCreated || again.status != http.StatusCreated || a.ID != b.ID {
		t.Fatalf("retried create: %d %s and %d %s; want the same run twice", first.status, a.ID, again.status, b.ID)
	}

	// A retried approval (same key, same body) counts once; the same key
	// with another body is another request, refused (422) rather than
	// swallowed.
	var firstView, retried gateway.RunView
	s.decide(a, "approve", "t-bob", map[string]string{"comment": "first"}, http.StatusOK, "Idempotency-Key", "bob-click-1").decode(t, &firstView)
	s.decide(a, "approve", "t-bob", map[string]string{"comment": "first"}, http.StatusOK, "Idempotency-Key", "bob-click-1").decode(t, &retried)
	if retried.Reasons[0].Progress != "1/2" || len(retried.Decisions) != 1 || retried.Decisions[0].ID != firstView.Decisions[0].ID || retried.Decisions[0].Comment != "first" {
		t.Errorf("after retry: %s, decisions %+v; want 1/2 with the one first decision", retried.Reasons[0].Progress, retried.Decisions)
	}
	s.decide(a, "approve", "t-bob", map[string]string{"comment": "retry"}, http.StatusUnprocessableEntity, "Idempotency-Key", "bob-click-1")
	// A second click with a new key by the same person is a no-op.
	s.decide(a, "approve", "t-bob", nil, http.StatusOK, "Idempotency-Key", "bob-click-2")
	if got := s.get(a); got.Reasons[0].Progress != "1/2" || len(got.Decisions) != 1 {
		t.Errorf("after a repeat approval: %s with %d decisions; want 1/2 and 1", got.Reasons[0].Progress, len(got.Decisions))
	}
}

func TestHealthzAndReadyz(t *testing.T) {
	s := newStack(t, stackOptions{})
	if r := s.call("GET", "/healthz", "", nil); r.status != http.StatusOK || string(r.body) != `{"status":"ok"}`+"\n" {
		t.Errorf("healthz: %d %s; want 200 ok", r.status, r.body)
	}
	r := s.call("GET", "/readyz", "", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"temporal":"reachable"`) || !strings.Contains(string(r.body), `"database":"reachable"`) {
		t.Errorf("readyz: %d %s; want 200 with Temporal and the database reachable", r.status, r.body)
	}

	// The same gateway with its database gone, and with Temporal gone: up,
	// not ready.
	closed, err := audit.Open(context.Background(), audit.DriverSQLite, filepath.Join(t.TempDir(), "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	for name, opts := range map[string]gateway.Options{
		"database": {Config: s.acts.Config, Runs: s.runs, Logger: zap.NewNop(), Audit: closed, Health: func(context.Context) error { return nil }},
		"temporal": {Config: s.acts.Config, Runs: s.runs, Logger: zap.NewNop(), Health: func(context.Context) error { return errors.New("connection refused") }},
	} {
		srv := httptest.NewServer(gateway.New(opts))
		down := &stack{t: t, url: srv.URL}
		if r := down.call("GET", "/healthz", "", nil); r.status != http.StatusOK {
			t.Errorf("%s down: healthz %d; want 200", name, r.status)
		}
		r := down.call("GET", "/readyz", "", nil)
		if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), `"`+name+`":"unreachable"`) {
			t.Errorf("%s down: readyz %d %s; want 503 naming it", name, r.status, r.body)
		}
		srv.Close()
	}
}

// TestNoWorkerIsServiceUnavailable: reading a running run needs a worker
// (the state query). With none polling, the gateway waits for one within
// its bound and then answers 503 with Retry-After, saying so, rather than
// 500 "internal error"; once a worker polls again the run reads as before.
func TestNoWorkerIsServiceUnavailable(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
	s.worker.Stop()

	began := time.Now()
	r := s.call("GET", s.runPath(run), "t-alice", nil)
	t.Logf("GET with no worker: %d %s after %v", r.status, r.body, time.Since(began).Round(time.Millisecond))
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.errorMessage(t), "no Gatehouse worker is polling") || r.header.Get("Retry-After") == "" {
		t.Errorf("GET with no worker: %d %s (Retry-After %q); want 503 saying no worker polls, with Retry-After", r.status, r.body, r.header.Get("Retry-After"))
	}

	s.startWorker()
	if got := s.get(run); got.Status != approval.StatusPendingApproval || len(got.Decisions) != 1 {
		t.Errorf("with a worker again: %s with %d decisions; want pending with bob's", got.Status, len(got.Decisions))
	}
}

// TestCreateWithNoWorkerSaysTheRunStarted: a run started while no worker
// polls cannot be read, but it exists and will go on once a worker polls.
// Without an idempotency key a 503 would make the caller retry and start a
// second run for the same plan; the gateway answers 202 with the run's id
// and Location instead, after one bounded read, and the run is there once a
// worker polls again. With a key a retry lands on the same run, so the 503
// with Retry-After stays, after one bounded read too.
func TestCreateWithNoWorkerSaysTheRunStarted(t *testing.T) {
	s := newStack(t, stackOptions{})
	s.worker.Stop()
	body := map[string]any{"plan": readPlan(t, "prod-network.json"), "message": "e2e"}

	began := time.Now()
	r := s.call("POST", "/api/v1/workspaces/prod-network/runs", "t-alice", body)
	took := time.Since(began)
	t.Logf("create with no worker: %d %s after %v", r.status, r.body, took.Round(time.Millisecond))
	var started gateway.RunView
	if r.status != http.StatusAccepted {
		t.Fatalf("create with no worker: %d %s; want 202 with the run's id", r.status, r.body)
	}
	r.decode(t, &started)
	if !strings.HasPrefix(started.ID, "run-") || started.Workspace != "prod-network" || r.header.Get("Location") != s.runPath(started) || r.header.Get("Retry-After") == "" {
		t.Errorf("202 body %s, Location %q, Retry-After %q; want the run's id, its path and when to look", r.body, r.header.Get("Location"), r.header.Get("Retry-After"))
	}
	if took > 40*time.Second {
		t.Errorf("the 202 took %v; want one bounded read, not two", took)
	}

	began = time.Now()
	keyed := s.call("POST", "/api/v1/workspaces/prod-network/runs", "t-alice", body, "Idempotency-Key", "no-worker-1")
	took = time.Since(began)
	if keyed.status != http.StatusServiceUnavailable || keyed.header.Get("Retry-After") == "" || took > 40*time.Second {
		t.Errorf("keyed create with no worker: %d %s after %v; want 503 with Retry-After after one bounded read (a retry finds the same run)", keyed.status, keyed.body, took)
	}

	s.startWorker()
	if got := s.readStarted("t-alice", r.header.Get("Location")); got.Status != approval.StatusPendingApproval || got.RequestedBy != "alice" || got.ID != started.ID {
		t.Errorf("the accepted run with a worker again: %s by %s; want it waiting for approval, alice's", got.Status, got.RequestedBy)
	}
	if again := s.call("POST", "/api/v1/workspaces/prod-network/runs", "t-alice", body, "Idempotency-Key", "no-worker-1"); again.status != http.StatusCreated {
		t.Errorf("keyed retry with a worker: %d %s; want 201 with the run the 503'd attempt started", again.status, again.body)
	}
}
