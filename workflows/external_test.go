package workflows_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// externalDraft is a run of a workspace that ServiceNow approves, read
// every five minutes.
func externalDraft() draft {
	d := input(destroysNeedTwo)
	d.Workspace.External = &approval.ExternalApproval{Provider: approval.ProviderServiceNow, PollEvery: 5 * time.Minute}
	return d
}

// ticketMocks stands in for ServiceNow: the ticket opens at once and reads
// as read says at each poll; withdrawals are recorded.
type ticketMocks struct {
	mu        sync.Mutex
	reads     int
	withdrawn []activities.TicketInput
}

func (h *harness) mockTickets(read func(n int) approval.ExternalDecision) *ticketMocks {
	m := &ticketMocks{}
	acts := &activities.Activities{}
	h.env.OnActivity(acts.OpenTicket, mock.Anything, mock.Anything).Return(approval.External{
		Provider: approval.ProviderServiceNow, ID: "sys-1", Ref: "CHG0030001", Link: "https://sn.example/chg",
	}, nil)
	h.env.OnActivity(acts.ReadTicket, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TicketInput) (approval.ExternalDecision, error) {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.reads++
		d := read(m.reads)
		d.Provider, d.TicketID = approval.ProviderServiceNow, in.Ticket.ID
		return d, nil
	})
	h.env.OnActivity(acts.WithdrawTicket, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TicketInput) error {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.withdrawn = append(m.withdrawn, in)
		return nil
	})
	return m
}

// signal sends an external decision at the given offset, signed with keys
// as the gateway signs it (nil: unsigned).
func (h *harness) signal(after time.Duration, d approval.ExternalDecision, forge bool) {
	h.env.RegisterDelayedCallback(func() {
		s := workflows.ExternalSignal{Decision: d, IssuedAt: h.env.Now().UTC()}
		payload, err := workflows.ExternalPayload(testWorkflowID, s)
		if err != nil {
			h.t.Fatal(err)
		}
		keys := testKeys
		if forge {
			keys = otherKeys
		}
		s.Signature = keys.Sign(payload)
		h.env.SignalWorkflow(workflows.SignalExternal, s)
	}, after)
}

func TestExternalLostCallbackIsRecoveredByPolling(t *testing.T) {
	h := newHarness(t)
	m := h.mockTickets(func(n int) approval.ExternalDecision {
		if n < 3 {
			return approval.ExternalDecision{State: "approval=requested state=-4"}
		}
		return approval.ExternalDecision{Verdict: approval.VerdictApproved, Actor: "jane.doe", State: "approval=approved state=-2"}
	})
	start := h.env.Now()
	got := h.run(externalDraft())
	if got.Status != approval.StatusApplied || len(h.applies) != 1 {
		t.Fatalf("status %s with %d applies; want applied once from the polled approval", got.Status, len(h.applies))
	}
	if m.reads != 3 {
		t.Errorf("ticket read %d times; want 3 (two waiting, one approved)", m.reads)
	}
	last := got.Decisions[len(got.Decisions)-1]
	if last.UserID != "servicenow:jane.doe" || !strings.Contains(last.Comment, "seen by reconciliation") {
		t.Errorf("decision %+v; want jane.doe's approval seen by reconciliation", last)
	}
	if took := got.UpdatedAt.Sub(start); took < 15*time.Minute || took > 16*time.Minute {
		t.Errorf("approved after %s; want one interval after the third read (15m)", took)
	}
	if got.External.Ref != "CHG0030001" || got.External.Decision == nil || got.External.Decision.Via != approval.ViaReconciliation {
		t.Errorf("external = %+v", got.External)
	}
	if len(m.withdrawn) != 0 {
		t.Errorf("a decided ticket was withdrawn: %+v", m.withdrawn)
	}
}

func TestExternalSignalsCountOnlyWhenSigned(t *testing.T) {
	h := newHarness(t)
	h.mockTickets(func(int) approval.ExternalDecision { return approval.ExternalDecision{} })
	approve := approval.ExternalDecision{Provider: approval.ProviderServiceNow, TicketID: "sys-1", Verdict: approval.VerdictApproved, Actor: "cab", Via: approval.ViaCallback}
	other := approve
	other.TicketID = "sys-2"
	h.signal(time.Minute, approve, true)  // forged: refused, recorded
	h.signal(2*time.Minute, other, false) // another ticket: refused, recorded
	internal := h.update(3*time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob})
	h.signal(4*time.Minute, approve, false)
	got := h.run(externalDraft())
	if got.Status != approval.StatusApplied || len(h.applies) != 1 {
		t.Fatalf("status %s with %d applies; want applied once", got.Status, len(h.applies))
	}
	if !internal.rejected || errType(internal.err) != string(approval.CodeConflict) || !strings.Contains(internal.err.Error(), "ServiceNow CHG0030001") {
		t.Errorf("internal approve: %v; want refused with a conflict naming the ticket", internal.err)
	}
	if n := len(got.External.Refused); n != 2 || !strings.Contains(got.External.Refused[0].Why, "signature") || !strings.Contains(got.External.Refused[1].Why, "sys-2") {
		t.Errorf("refused = %+v; want the forged and the other ticket's decisions", got.External.Refused)
	}
	if last := got.Decisions[len(got.Decisions)-1]; last.UserID != "servicenow:cab" || last.Kind != approval.DecisionApprove {
		t.Errorf("decision %+v", last)
	}
}

func TestExternalRejectionCancelsAndTimeoutWithdraws(t *testing.T) {
	h := newHarness(t)
	m := h.mockTickets(func(int) approval.ExternalDecision { return approval.ExternalDecision{} })
	h.signal(time.Minute, approval.ExternalDecision{Provider: approval.ProviderServiceNow, TicketID: "sys-1", Verdict: approval.VerdictRejected, Actor: "cab", Comment: "no change window", Via: approval.ViaCallback}, false)
	got := h.run(externalDraft())
	if got.Status != approval.StatusCancelled || len(h.applies) != 0 || len(m.withdrawn) != 0 {
		t.Fatalf("status %s, %d applies, %d withdrawals; want cancelled by ServiceNow, nothing else", got.Status, len(h.applies), len(m.withdrawn))
	}

	h = newHarness(t)
	m = h.mockTickets(func(int) approval.ExternalDecision { return approval.ExternalDecision{} })
	got = h.run(externalDraft())
	if got.Status != approval.StatusTimedOut || len(h.applies) != 0 {
		t.Fatalf("status %s with %d applies; want timed out, never applied", got.Status, len(h.applies))
	}
	if len(m.withdrawn) != 1 || m.withdrawn[0].Ticket.ID != "sys-1" || got.External.Withdrawn == nil {
		t.Errorf("withdrawals %+v, record %+v; want the ticket withdrawn once", m.withdrawn, got.External.Withdrawn)
	}
}
