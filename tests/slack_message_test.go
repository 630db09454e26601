package tests

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	enumspb "go.temporal.io/api/enums/v1"
)

// blocksOf returns the blocks a chat.postMessage or chat.update carried,
// as JSON text.
func blocksOf(c fakeSlackCall) string {
	if c.json != nil {
		b, _ := json.Marshal(c.json["blocks"])
		return string(b)
	}
	return c.form.Get("blocks")
}

// waitForCall waits until fakeSlack has a call of method, after the first
// n calls, that ok accepts, and returns it.
func waitForCall(t *testing.T, api *fakeSlack, n int, method string, ok func(fakeSlackCall) bool) fakeSlackCall {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range api.since(n, method) {
			if ok(c) {
				return c
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no %s call as wanted after 30 s; calls: %d", method, api.count())
	return fakeSlackCall{}
}

// TestSlackMessageIsALiveViewOfTheRun: the run's approval request is one
// message in the workspace's channel with the facts and the three buttons;
// each approval edits that same message in place, and once the run is
// decided the buttons are gone and the outcome stays. The message is
// rendered from the run as the workflow's state query shows it.
func TestSlackMessageIsALiveViewOfTheRun(t *testing.T) {
	s, api := newSlackStack(t)
	start := api.count()
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	posted := waitForCall(t, api, start, "chat.postMessage", func(c fakeSlackCall) bool {
		return strings.Contains(blocksOf(c), run.ID)
	})
	blocks := blocksOf(posted)
	for _, want := range []string{"prod-network", "production", "alice", "destroys-need-two", "0/2",
		activities.ActionApprove, activities.ActionReject, activities.ActionRequestChanges, "aws_security_group.legacy"} {
		if !strings.Contains(blocks, want) {
			t.Errorf("posted blocks lack %q:\n%s", want, blocks)
		}
	}
	s.decide(run, "approve", "t-bob", map[string]string{"comment": "route table checked"}, http.StatusOK)
	waitForCall(t, api, start, "chat.update", func(c fakeSlackCall) bool {
		b := blocksOf(c)
		return strings.Contains(b, "1/2") && strings.Contains(b, "route table checked")
	})
	s.decide(run, "approve", "t-carol", nil, http.StatusOK)
	s.waitFor(run, approval.StatusApproved)
	final := waitForCall(t, api, start, "chat.update", func(c fakeSlackCall) bool {
		b := blocksOf(c)
		return strings.Contains(b, "2/2") && !strings.Contains(b, activities.ActionApprove)
	})
	if ts := final.form.Get("ts"); final.json == nil && ts == "" {
		t.Errorf("chat.update without the message's ts: %+v", final)
	}
	if n := len(api.since(start, "chat.postMessage")); n != 1 {
		t.Errorf("%d top-level messages; want one per run, updated in place", n)
	}
}

// TestSlackReminderInATimersTask: a reminder is a notice of a workflow task
// nobody waits on, which lean runs first try as a local activity within
// that task. Its Slack reply is rendered from the run; the run must not be
// read by querying the workflow whose task is the one running it: the
// query would wait for the very task that waits on it.
func TestSlackReminderInATimersTask(t *testing.T) {
	api := newFakeSlack(t, map[string]string{"UCAROL": "carol@example.com"})
	text := strings.Replace(slackConfig, "API", strconv.Quote(api.url), 1) + `  - name: reminded
    environment: production
    supersede: false
    remind_every: 2s
    notify: {slack: {channel: C0REMIND}}
    rules:
      - {name: two-of-platform, approvers: {groups: [platform]}, min_approvals: 2}
`
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	s := stackFor(t, cfg, stackOptions{})
	start := api.count()
	run := s.createRun("reminded", "t-alice", "prod-network.json")
	created := time.Now()
	posted := waitForCall(t, api, start, "chat.postMessage", func(c fakeSlackCall) bool {
		return c.form.Get("thread_ts") == "" && strings.Contains(blocksOf(c), run.ID)
	})
	reply := waitForCall(t, api, start, "chat.postMessage", func(c fakeSlackCall) bool {
		return c.form.Get("thread_ts") != "" && strings.Contains(c.form.Get("text"), "Reminder")
	})
	took := time.Since(created)
	if ch := reply.form.Get("channel"); ch != posted.form.Get("channel") {
		t.Errorf("reminder in channel %q; the request was posted in %q", ch, posted.form.Get("channel"))
	}
	// The first reminder is due 2 s after the request. A local attempt
	// waiting on a query of its own run holds the task until the SDK
	// heartbeats it (8 s) and its read gives up (10 s); NotifyFrom then
	// posts the reply.
	if took > 7*time.Second {
		t.Errorf("first reminder (due after 2 s) was posted %s after the run started", took.Round(100*time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	it := s.client.GetWorkflowHistory(ctx, run.ID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		// NotifyFrom takes over only from a local attempt that could not
		// finish; a reminder's attempt must have finished.
		a := ev.GetActivityTaskScheduledEventAttributes()
		if a == nil || a.GetActivityType().GetName() != "NotifyFrom" {
			continue
		}
		var in activities.NotifyInput
		if err := s.payloads.FromPayloads(a.GetInput(), &in); err != nil {
			t.Fatal(err)
		}
		if in.Event.Kind == activities.EventReminder {
			t.Errorf("event %d: reminder %s went on in NotifyFrom; the local attempt should have delivered it", ev.GetEventId(), in.Event.ID)
		}
	}
}
