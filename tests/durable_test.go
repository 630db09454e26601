package tests

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	sdkpb "go.temporal.io/api/sdk/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/starter"
)

func TestWebhookReceivesSignedEvents(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("hooked", "t-alice", "add-only.json")
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
	s.waitFor(run, approval.StatusApproved) // gate only: it has no apply
	deadline := time.Now().Add(10 * time.Second)
	var kinds []activities.EventKind
	for time.Now().Before(deadline) {
		kinds = kinds[:0]
		for _, e := range s.hooks.events(run.ID) {
			kinds = append(kinds, e.Kind)
		}
		if len(kinds) == 2 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The webhook gets the run's stream with its audit trail: the request
	// rides on the approval request, bob's decision on the end.
	want := []activities.EventKind{activities.EventApprovalRequested, activities.EventFinished}
	if !slices.Equal(kinds, want) || s.hooks.bad != 0 {
		t.Fatalf("webhook got %v (%d bad deliveries); want %v, all signed", kinds, s.hooks.bad, want)
	}
	events := s.hooks.events(run.ID)
	var trail []approval.AuditAction
	for _, e := range events {
		for _, a := range e.Audit {
			trail = append(trail, a.Action)
		}
	}
	if want := []approval.AuditAction{approval.AuditRequested, approval.AuditReasonOpened, approval.AuditApproved}; !slices.Equal(trail, want) {
		t.Errorf("audit entries %v; want %v", trail, want)
	}
	asked := events[0]
	if !slices.Contains(asked.Recipients, "bob") || asked.Workspace != "hooked" || asked.ID == "" {
		t.Errorf("approval request %+v; want it addressed to the platform group", asked)
	}
}

func TestRenotifyOverHTTP(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(run, "renotify", "t-victor", nil, http.StatusForbidden)
	s.decide(run, "renotify", "t-alice", nil, http.StatusOK)
	r := s.decide(run, "renotify", "t-bob", nil, http.StatusTooManyRequests)
	retry := r.header.Get("Retry-After")
	if retry == "" || retry == "0" || !strings.Contains(r.errorMessage(t), "try again") {
		t.Errorf("429 with Retry-After %q, %s; want seconds to wait", retry, r.body)
	}
	got := s.get(run)
	if last := got.Decisions[len(got.Decisions)-1]; last.Decision != approval.DecisionRenotify || last.UserID != "alice" {
		t.Errorf("trail ends with %+v; want alice's renotify", last)
	}
}

// readmeStuckQuery returns the stuck-runs query README.md shows, with its
// example timestamp replaced by cutoff.
func readmeStuckQuery(t *testing.T, cutoff time.Time) string {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "ExecutionStatus = 'Running' AND GatehouseStatus IN (") && strings.Contains(line, "GatehousePendingSince <") {
			stamp := regexp.MustCompile(`'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ'`)
			return stamp.ReplaceAllString(line, "'"+cutoff.UTC().Format(time.RFC3339)+"'")
		}
	}
	t.Fatal("README.md shows no stuck-runs query")
	return ""
}

func TestReadmeStuckQueryFindsAPendingRun(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	done := s.createRun("staging-app", "t-alice", "add-only.json")
	s.waitFor(done, approval.StatusApplied)

	// The run has waited a few milliseconds: "stuck for longer than -1m".
	cutoff := time.Now().Add(time.Minute)
	query := readmeStuckQuery(t, cutoff)
	if want := starter.StuckQuery(cutoff); query != want {
		t.Fatalf("README's query\n%s\ndiffers from the one gatehouse runs --stuck uses\n%s", query, want)
	}
	ctx := context.Background()
	var found []string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := s.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: s.temporal.GetDefaultNamespace(), Query: query})
		if err != nil {
			t.Fatalf("the README query failed: %v", err)
		}
		found = found[:0]
		for _, e := range resp.GetExecutions() {
			found = append(found, e.GetExecution().GetWorkflowId())
		}
		if len(found) == 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !slices.Equal(found, []string{run.ID}) {
		t.Fatalf("README query found %v; want only the pending run %s", found, run.ID)
	}

	// gatehouse runs --stuck goes through the same listing, which also
	// reads the other search attributes.
	stuck, err := s.runs.ListStuck(ctx, -time.Minute, time.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(stuck) != 1 || stuck[0].ID != run.ID || stuck[0].Environment != "production" || stuck[0].RequestedBy != "alice" ||
		stuck[0].PendingSince == nil || stuck[0].Deadline == nil || !slices.Contains(stuck[0].PendingApprovers, "bob") {
		t.Errorf("stuck = %+v; want the pending run with its environment, requester, pending approvers and deadline", stuck)
	}
	if later, _ := s.runs.ListStuck(ctx, time.Hour, time.Now(), ""); len(later) != 0 {
		t.Errorf("runs stuck for over an hour: %+v; want none", later)
	}

	// The Web UI shows the run's current details: what it waits for, in words.
	v, err := s.client.QueryWorkflow(ctx, run.ID, "", "__temporal_workflow_metadata")
	if err != nil {
		t.Fatal(err)
	}
	var md sdkpb.WorkflowMetadata
	if err := v.Get(&md); err != nil {
		t.Fatal(err)
	}
	if details := md.GetCurrentDetails(); !strings.HasPrefix(details, "waiting for 0/2 approvals on destroys-need-two from group platform; times out ") {
		t.Errorf("current details %q; want what the run waits for", details)
	}
}

// TestLongWaitContinuesAsNewWithBoundedHistory lets a run remind its
// approvers every 150 ms on a real server (whose timers fire with about a
// second's granularity), with a budget of 10 wake-ups per workflow run, and
// checks every history of the chain stays bounded while the run keeps its
// id, approvals and deadline.
func TestLongWaitContinuesAsNewWithBoundedHistory(t *testing.T) {
	const wakeups = 10
	s := newStack(t, stackOptions{maxWakeups: wakeups})
	run := s.createRun("long", "t-alice", "add-only.json")
	s.decide(run, "approve", "t-bob", map[string]string{"comment": "first"}, http.StatusOK, "Idempotency-Key", "bob-long")
	ctx := context.Background()
	chain := func() []string {
		resp, err := s.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: s.temporal.GetDefaultNamespace(), Query: "WorkflowId = '" + run.ID + "'",
		})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range resp.GetExecutions() {
			ids = append(ids, e.GetExecution().GetRunId())
		}
		return ids
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(chain()) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after 60s the run has %d workflow runs; want at least 2", len(chain()))
		}
		time.Sleep(200 * time.Millisecond)
	}
	// A retry of bob's approval after the hand-overs is answered, not counted.
	var again struct {
		Reasons []struct{ Progress string } `json:"reasons"`
	}
	s.decide(run, "approve", "t-bob", map[string]string{"comment": "first"}, http.StatusOK, "Idempotency-Key", "bob-long").decode(t, &again)
	if again.Reasons[0].Progress != "1/2" {
		t.Errorf("after the retry: %s; want 1/2", again.Reasons[0].Progress)
	}
	s.decide(run, "approve", "t-carol", nil, http.StatusOK)
	got := s.waitFor(run, approval.StatusApplied)
	if got.ID != run.ID || !got.CreatedAt.Equal(run.CreatedAt) || len(got.Decisions) != 2 || got.Decisions[0].Comment != "first" {
		t.Errorf("final run %s created %v decisions %+v; want the same run with both approvals", got.ID, got.CreatedAt, got.Decisions)
	}

	longest := 0
	for _, runID := range chain() {
		it := s.client.GetWorkflowHistory(ctx, run.ID, runID, false, 0)
		n := 0
		for it.HasNext() {
			if _, err := it.Next(); err != nil {
				t.Fatal(err)
			}
			n++
		}
		longest = max(longest, n)
	}
	// Each wake-up adds a timer (2 events), the workflow task it wakes (3),
	// a notice activity (3) and the workflow task its result wakes (3), and
	// sometimes a search attribute upsert: 12, plus the start and the
	// hand-over.
	if limit := 12*wakeups + 40; longest > limit {
		t.Errorf("longest history %d events; want at most %d for %d wake-ups", longest, limit, wakeups)
	}
	t.Logf("%d workflow runs, longest history %d events for %d wake-ups (%.1f per wake-up)", len(chain()), longest, wakeups, float64(longest)/wakeups)
}
