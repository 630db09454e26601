package workflows_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/worker"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// TestLiveViewsHearEveryDecisionInOrder: the first notice posts the run's
// Slack message; every later one carries its reference (so it updates the
// message or replies in its thread), decisions and status changes each get
// a notice, and notices are delivered one at a time, in order.
func TestLiveViewsHearEveryDecisionInOrder(t *testing.T) {
	h := &harness{t: t, env: newEnv()}
	acts := &activities.Activities{}
	worker.Register(h.env, testRunner(), acts)
	var mu sync.Mutex
	var seen []activities.Event
	busy := 0
	ref := approval.MessageRef{Kind: "slack", Channel: "C0PRODNET", TS: "1700000000.000100"}
	h.env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, e activities.Event) (activities.NotifyResult, error) {
		mu.Lock()
		busy++
		if busy > 1 {
			t.Errorf("two notices delivered at once (%s)", e.Kind)
		}
		seen = append(seen, e)
		mu.Unlock()
		defer func() { mu.Lock(); busy--; mu.Unlock() }()
		if e.Kind == activities.EventApprovalRequested && len(e.Messages) == 0 {
			return activities.NotifyResult{Posted: []approval.MessageRef{ref}, Failures: []string{"slack: dm to carol: user_not_found"}}, nil
		}
		return activities.NotifyResult{}, nil
	})
	h.env.OnActivity(acts.Apply, mock.Anything, mock.Anything).Return(approval.ApplyResult{Executed: true}, nil)
	h.update(time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob, Comment: "fine"})
	h.update(2*time.Minute, workflows.UpdateApprove, "u-carol", approval.Request{Actor: carol})
	setWorkflowID(h.env)
	got := h.run(input(destroysNeedTwo))

	// The run's request is recorded for the trail on the first notice.
	if seen[0].Kind != activities.EventApprovalRequested || len(seen[0].Audit) != 2 || seen[0].Audit[0].Action != approval.AuditRequested {
		t.Fatalf("first notice %s with %d entries; want the approval request carrying the run's request", seen[0].Kind, len(seen[0].Audit))
	}
	var kinds []activities.EventKind
	for i, e := range seen {
		kinds = append(kinds, e.Kind)
		if i > 0 && !slices.Contains(e.Messages, ref) {
			t.Errorf("notice %d (%s) carries messages %v; want the posted one", i, e.Kind, e.Messages)
		}
	}
	want := []activities.EventKind{activities.EventApprovalRequested, activities.EventDecided, activities.EventDecided,
		activities.EventUpdated, activities.EventFinished}
	// Status changes between approved, applying and applied may fold into
	// fewer updated notices; the decisions and the bookends may not.
	if len(kinds) < len(want)-1 || kinds[0] != want[0] || kinds[1] != want[1] || kinds[2] != want[2] || kinds[len(kinds)-1] != activities.EventFinished {
		t.Errorf("notices %v; want %v (updates may fold)", kinds, want)
	}
	if seen[1].Actor != "bob" || seen[1].Comment != "fine" {
		t.Errorf("first decided notice %+v; want bob's approval with his comment", seen[1])
	}
	if got.Status != approval.StatusApplied || !slices.Equal(got.Messages, []approval.MessageRef{ref}) {
		t.Errorf("run %s with messages %v; want applied, the message kept", got.Status, got.Messages)
	}
	if len(got.NotifyFailures) != 1 || got.NotifyFailures[0].Error != "slack: dm to carol: user_not_found" {
		t.Errorf("notify failures %+v; want the DM failure the notice reported", got.NotifyFailures)
	}
}

// TestEveryChangeIsAnAuditedNotice: the audit trail rides on the notice
// stream: every change of the run is one notice carrying its entry, under
// the notice's ID, in order, whether or not a Slack message exists.
func TestEveryChangeIsAnAuditedNotice(t *testing.T) {
	h := newHarness(t)
	h.update(time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob, Comment: "fine", Channel: approval.ChannelSlack})
	h.update(2*time.Minute, workflows.UpdateApprove, "u-carol", approval.Request{Actor: carol})
	setWorkflowID(h.env)
	h.run(input(destroysNeedTwo))
	var actions []approval.AuditAction
	ids := map[string]bool{}
	var status approval.Status
	for _, e := range h.events {
		if len(e.Audit) == 0 {
			t.Errorf("notice %s (%s) carries no audit entry", e.ID, e.Kind)
		}
		for _, a := range e.Audit {
			actions = append(actions, a.Action)
			if !strings.HasPrefix(a.ID, e.RunID+"/") || ids[a.ID] || a.RunID != e.RunID || a.Workspace != "prod-network" || a.WorkflowVersion != "audit" {
				t.Errorf("entry %+v of notice %s: want a unique ID of the run's, the run and version audit", a, e.ID)
			}
			ids[a.ID] = true
			if a.StatusBefore != status && a.Action != approval.AuditReasonOpened {
				t.Errorf("%s: status before %q, but the trail had the run %q", a.Action, a.StatusBefore, status)
			}
			status = a.StatusAfter
			if a.Action == approval.AuditApproved && a.Actor.ID == "bob" && (a.Comment != "fine" || a.Actor.Channel != approval.ChannelSlack || a.ResponseSeconds <= 0) {
				t.Errorf("bob's approval: %+v", a)
			}
		}
	}
	// The request rides on the approval request, the applied on the
	// finished notice: six entries on five notices (asked, bob, carol, the
	// apply's start, finished).
	if len(h.events) != 5 {
		t.Errorf("%d notices; want 5", len(h.events))
	}
	want := []approval.AuditAction{approval.AuditRequested, approval.AuditReasonOpened, approval.AuditApproved,
		approval.AuditApproved, approval.AuditApplyStarted, approval.AuditApplied}
	if !slices.Equal(actions, want) {
		t.Errorf("trail %v; want %v", actions, want)
	}
	if status != approval.StatusApplied {
		t.Errorf("the trail ends with the run %s; want applied", status)
	}
}
