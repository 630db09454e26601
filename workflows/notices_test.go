package workflows_test

import (
	"context"
	"encoding/json"
	"reflect"
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
// message or replies in its thread), every workflow task that decides or
// changes the run sends a notice (what one task records rides on its last
// notice), and notices are delivered one at a time, in order.
func TestLiveViewsHearEveryDecisionInOrder(t *testing.T) {
	h := &harness{t: t, env: newEnv()}
	acts := &activities.Activities{}
	worker.Register(h.env, testRunner(), acts)
	var mu sync.Mutex
	var seen []activities.Event
	busy := 0
	ref := approval.MessageRef{Kind: "slack", Channel: "C0PRODNET", TS: "1700000000.000100"}
	onNotify(h.env, acts, func(e activities.Event) (activities.NotifyResult, error) {
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
	// Carol's approval starts the apply in the same task: her decided
	// notice rides on the apply's start; the applied on the finished one.
	want := []activities.EventKind{activities.EventApprovalRequested, activities.EventDecided,
		activities.EventUpdated, activities.EventFinished}
	if !slices.Equal(kinds, want) {
		t.Errorf("notices %v; want %v", kinds, want)
	}
	if len(seen) == len(want) {
		var carried []approval.AuditAction
		for _, a := range seen[2].Audit {
			carried = append(carried, a.Action)
		}
		if !slices.Equal(carried, []approval.AuditAction{approval.AuditApproved, approval.AuditApplyStarted}) || seen[2].Audit[0].Actor.ID != "carol" {
			t.Errorf("the apply's start carries %v; want carol's approval, then the start", carried)
		}
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
			if !strings.HasPrefix(a.ID, e.RunID+"/") || ids[a.ID] || a.RunID != e.RunID || a.Workspace != "prod-network" || a.WorkflowVersion != "lean-4" {
				t.Errorf("entry %+v of notice %s: want a unique ID of the run's, the run and version lean-4", a, e.ID)
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
	// The request rides on the approval request, carol's approval on the
	// apply's start (one workflow task), the applied on the finished
	// notice: six entries on four notices (asked, bob, carol and the
	// apply's start, finished).
	if len(h.events) != 4 {
		t.Errorf("%d notices; want 4", len(h.events))
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

// TestNoticesNobodyWaitsOnGoLocalFirst: an Update's notices are activities
// of their own, so nobody waits on Slack for an answer and no entry is
// written for an Update its task may yet lose. The start's (lean-3) is
// recorded by a local activity of the start's task, which leaves the
// workspace's channels to NotifyFrom: the starter waits on that task, not
// on Slack. A reminder's (a timer's task) is first tried as a local
// activity, carrying the run as the workflow holds it for the messages: the
// attempt cannot query its own run. What a local attempt could not deliver
// goes on in NotifyFrom from where it stopped; a failure retrying cannot
// cure goes on nowhere and is recorded on the run.
func TestNoticesNobodyWaitsOnGoLocalFirst(t *testing.T) {
	ref := approval.MessageRef{Kind: "slack", Channel: "C0PRODNET", TS: "1700000000.000100"}
	recorded := activities.NotifyProgress{Audited: true, Logged: true}
	for _, tc := range []struct {
		name string
		// local answers the reminders' local attempts.
		local    activities.NotifyOutcome
		wantFrom bool // NotifyFrom takes over the reminders, from the local progress
		wantFail string
	}{
		{name: "delivered", local: activities.NotifyOutcome{}},
		{name: "unfinished", local: activities.NotifyOutcome{Unfinished: &activities.NotifyProgress{SlackDone: true, Posted: []approval.MessageRef{ref}}, Error: "webhook: 503"}, wantFrom: true},
		{name: "final", local: activities.NotifyOutcome{Unfinished: &activities.NotifyProgress{SlackDone: true}, Error: "webhook refused", Final: true}, wantFail: "webhook refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newEnv()
			acts := &activities.Activities{}
			worker.Register(env, testRunner(), acts)
			var mu sync.Mutex
			kinds := map[string][]activities.EventKind{}
			var asActivities []activities.Event
			var reminded []approval.Run // the runs the reminders carried
			env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, e activities.Event) (activities.NotifyResult, error) {
				mu.Lock()
				defer mu.Unlock()
				asActivities = append(asActivities, e)
				return activities.NotifyResult{}, nil
			})
			env.OnActivity(acts.NotifyLocally, mock.Anything, mock.Anything).Return(func(_ context.Context, n activities.LocalNotice) (activities.NotifyOutcome, error) {
				mu.Lock()
				defer mu.Unlock()
				if n.RecordOnly {
					// As NotifyLocally answers in a workspace with channels.
					kinds["recorded"] = append(kinds["recorded"], n.Event.Kind)
					p := recorded
					return activities.NotifyOutcome{Unfinished: &p}, nil
				}
				kinds["local"] = append(kinds["local"], n.Event.Kind)
				var run approval.Run
				if err := json.Unmarshal(n.Run, &run); err != nil {
					t.Errorf("notice %s: run %q: %v", n.Event.Kind, n.Run, err)
				}
				if n.Event.Kind == activities.EventReminder {
					reminded = append(reminded, run)
				}
				return tc.local, nil
			})
			var froms []activities.NotifyInput
			env.OnActivity(acts.NotifyFrom, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.NotifyInput) (activities.NotifyResult, error) {
				mu.Lock()
				defer mu.Unlock()
				froms = append(froms, in)
				return activities.NotifyResult{Posted: in.From.Posted}, nil
			}).Maybe()
			in := timedInput()
			in.Workspace.Timing.EscalateAfter, in.Workspace.Timing.EscalateTo = 0, approval.Approvers{}
			// The test environment keeps no history, so the workflow
			// tasks that tell the start's, bob's Update's and the timers'
			// apart are made here: the history grows between them, as on
			// a server.
			h := &harness{t: t, env: env}
			env.RegisterDelayedCallback(func() { env.SetCurrentHistoryLength(40) }, time.Minute)
			approved := h.update(30*time.Minute, workflows.UpdateApprove, "u-bob", approval.Request{Actor: bob})
			env.RegisterDelayedCallback(func() { env.SetCurrentHistoryLength(60) }, 31*time.Minute)
			setWorkflowID(env)
			got := h.run(in)

			if got.Status != approval.StatusTimedOut || !approved.ok || approved.err != nil {
				t.Fatalf("run %s, bob's approval %+v; want timed_out after it", got.Status, approved)
			}
			if r := kinds["recorded"]; !slices.Equal(r, []activities.EventKind{activities.EventApprovalRequested}) {
				t.Errorf("notices recorded in their task %v; want the start's approval request", r)
			}
			if len(froms) == 0 || froms[0].Event.Kind != activities.EventApprovalRequested || !reflect.DeepEqual(froms[0].From, recorded) {
				t.Errorf("NotifyFrom took over %+v; want first the approval request's channels, after its record", froms)
			}
			if len(asActivities) != 1 || !slices.ContainsFunc(asActivities[0].Audit, func(a approval.AuditEvent) bool { return a.Action == approval.AuditApproved }) {
				t.Errorf("notices as activities %+v; want one: bob's approval", asActivities)
			}
			if got.Status != approval.StatusTimedOut {
				t.Fatalf("run %s; want timed_out", got.Status)
			}
			if len(reminded) == 0 || reminded[0].ID == "" || reminded[0].Status != approval.StatusPendingApproval || len(reminded[0].Reasons) == 0 {
				t.Errorf("reminders carried %+v; want the waiting run", reminded)
			}
			if l := kinds["local"]; len(l) < 4 || slices.ContainsFunc(l, func(k activities.EventKind) bool {
				return k != activities.EventReminder && k != activities.EventFinished
			}) {
				t.Errorf("notices tried locally %v; want the reminders (and the timeout's)", l)
			}
			switch {
			case tc.wantFrom:
				if froms := froms[1:]; len(froms) != len(kinds["local"]) || !froms[0].From.SlackDone || froms[0].Event.Kind != activities.EventReminder || froms[0].Event.ID == "" {
					t.Errorf("NotifyFrom took over %d of %d local attempts, first %+v; want each, from the local progress", len(froms), len(kinds["local"]), froms)
				}
				if !slices.Contains(got.Messages, ref) {
					t.Errorf("messages %v; want the one the local attempt posted", got.Messages)
				}
			default:
				if len(froms) != 1 {
					t.Errorf("NotifyFrom ran %d times; want once, for the start's channels", len(froms))
				}
			}
			failed := 0
			for _, f := range got.NotifyFailures {
				if f.Error == tc.wantFail {
					failed++
				}
			}
			if tc.wantFail != "" && failed != len(kinds["local"]) {
				t.Errorf("notify failures %+v; want one %q per local attempt", got.NotifyFailures, tc.wantFail)
			}
			if tc.wantFail == "" && len(got.NotifyFailures) != 0 {
				t.Errorf("notify failures %+v; want none", got.NotifyFailures)
			}
		})
	}
}
