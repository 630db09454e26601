package tests

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

// TestConcurrentDecisionsHaveExactlyOneOutcome: twenty approvals,
// rejections and cancellations from different people land on one run at
// once, over and over. Each time the run ends one way, its decision trail
// says the same, nothing is applied unless the trail has both approvals
// before any ending, and nothing is applied twice.
func TestConcurrentDecisionsHaveExactlyOneOutcome(t *testing.T) {
	s := newStack(t, stackOptions{})
	type call struct{ action, token string }
	calls := []call{
		{"approve", "t-bob"}, {"approve", "t-carol"}, {"reject", "t-carol"}, {"cancel", "t-alice"},
		{"reject", "t-erin"}, {"approve", "t-victor"}, {"approve", "t-alice"}, {"cancel", "t-bob"},
	}
	outcomes := map[approval.Status]int{}
	for round := 0; round < 5; round++ {
		run := s.createRun("prod-network", "t-alice", "prod-network.json")
		var wg sync.WaitGroup
		statuses := make(chan int, 20)
		for i := 0; i < 20; i++ {
			c := calls[(i+round)%len(calls)]
			body := map[string]string{}
			switch c.action {
			case "reject":
				body["comment"] = fmt.Sprintf("no (%d)", i)
			case "cancel":
				body["message"] = fmt.Sprintf("stop (%d)", i)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses <- s.call("POST", s.runPath(run)+"/"+c.action, c.token, body).status
			}()
		}
		wg.Wait()
		close(statuses)
		for code := range statuses {
			if code >= 500 {
				t.Fatalf("round %d: a decision answered %d", round, code)
			}
		}
		final := s.settle(run)
		outcomes[final.Status]++
		ends, approvals := 0, map[approval.UserID]bool{}
		endedAt := -1
		for i, d := range final.Decisions {
			switch d.Decision {
			case approval.DecisionReject, approval.DecisionCancel:
				ends++
				endedAt = i
			case approval.DecisionApprove:
				if endedAt >= 0 {
					t.Errorf("round %d: %s approved after the run ended", round, d.UserID)
				}
				approvals[d.UserID] = true
			}
			if d.UserID == "victor" || (d.UserID == "alice" && d.Decision == approval.DecisionApprove) {
				t.Errorf("round %d: %s's %s counted", round, d.UserID, d.Decision)
			}
		}
		applies := 0
		for _, line := range s.applied() {
			if strings.Contains(line, run.ID) {
				applies++
			}
		}
		switch final.Status {
		case approval.StatusApplied:
			if ends != 0 || !approvals["bob"] || !approvals["carol"] || applies != 1 {
				t.Errorf("round %d: applied with %d endings, approvals %v, %d applies", round, ends, approvals, applies)
			}
		case approval.StatusRejected, approval.StatusCancelled:
			if ends != 1 || applies != 0 {
				t.Errorf("round %d: %s with %d endings in the trail and %d applies", round, final.Status, ends, applies)
			}
			last := final.Decisions[endedAt].Decision
			if (final.Status == approval.StatusRejected) != (last == approval.DecisionReject) {
				t.Errorf("round %d: status %s but the ending decision is %s", round, final.Status, last)
			}
		default:
			t.Errorf("round %d: run ended %s", round, final.Status)
		}
		// The audit trail tells the same story.
		trail := s.trail(run, "t-victor", auditEnd(final.Status))
		n := 0
		for _, e := range trail {
			if e.Action == approval.AuditRejected || e.Action == approval.AuditCancelled {
				n++
			}
		}
		if n != ends {
			t.Errorf("round %d: the trail has %d endings, the run %d", round, n, ends)
		}
	}
	t.Logf("outcomes over 5 rounds: %v", outcomes)
}

// settle waits until the run is final and returns it.
func (s *stack) settle(run gateway.RunView) gateway.RunView {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := s.get(run)
		if got.Status.Final() {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("run %s is still %s after every decision answered", run.ID, got.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// auditEnd is the last action of the trail of a run that ended in st.
func auditEnd(st approval.Status) approval.AuditAction {
	switch st {
	case approval.StatusApplied:
		return approval.AuditApplied
	case approval.StatusRejected:
		return approval.AuditRejected
	}
	return approval.AuditCancelled
}
