package workflows_test

import (
	"context"
	"slices"
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

// TestWithoutLiveViewsNoExtraNotices: a run with no posted message (a
// webhook-only workspace) gets exactly the notices it had before.
func TestWithoutLiveViewsNoExtraNotices(t *testing.T) {
	h := newHarness(t)
	h.update(time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob})
	h.update(2*time.Minute, workflows.UpdateApprove, "u-carol", approval.Request{Actor: carol})
	setWorkflowID(h.env)
	h.run(input(destroysNeedTwo))
	var kinds []activities.EventKind
	for _, e := range h.events {
		kinds = append(kinds, e.Kind)
	}
	if !slices.Equal(kinds, []activities.EventKind{activities.EventApprovalRequested, activities.EventFinished}) {
		t.Errorf("notices %v; want approval_requested then finished", kinds)
	}
}
