package tests

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
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
