package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap/zaptest"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/plan"
)

const slackToken = "xoxb-test-token"

// slackCall is one Web API call the fake Slack received.
type slackCall struct {
	Method string
	Form   url.Values
}

// fakeSlack stands in for Slack's Web API: it checks the token, answers
// chat.postMessage, chat.update, conversations.open and users.lookupByEmail
// like Slack does, and records every call.
type fakeSlack struct {
	mu    sync.Mutex
	calls []slackCall
	n     int
	// emails are the accounts users.lookupByEmail finds.
	emails map[string]string
	// answer, when set, answers instead of the fake (a 429, a 503).
	answer func(method string, w http.ResponseWriter) bool
}

func newFakeSlack(t *testing.T) (*fakeSlack, string) {
	t.Helper()
	f := &fakeSlack{emails: map[string]string{"carol@example.com": "U0CAROL"}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL + "/"
}

func (f *fakeSlack) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/")
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, slackCall{Method: method, Form: r.PostForm})
	if f.answer != nil && f.answer(method, w) {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.PostForm.Get("token") != slackToken {
		fmt.Fprint(w, `{"ok":false,"error":"invalid_auth"}`)
		return
	}
	switch method {
	case "chat.postMessage":
		f.n++
		fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":"1700000000.%06d"}`, r.PostForm.Get("channel"), f.n)
	case "chat.update":
		fmt.Fprintf(w, `{"ok":true,"channel":%q,"ts":%q}`, r.PostForm.Get("channel"), r.PostForm.Get("ts"))
	case "conversations.open":
		fmt.Fprintf(w, `{"ok":true,"channel":{"id":"D%s"}}`, r.PostForm.Get("users"))
	case "users.lookupByEmail":
		if id, ok := f.emails[r.PostForm.Get("email")]; ok {
			fmt.Fprintf(w, `{"ok":true,"user":{"id":%q}}`, id)
			return
		}
		fmt.Fprint(w, `{"ok":false,"error":"users_not_found"}`)
	default:
		fmt.Fprint(w, `{"ok":false,"error":"unknown_method"}`)
	}
}

// called returns the calls of one method.
func (f *fakeSlack) called(method string) []slackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []slackCall
	for _, c := range f.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// button is an element of a message's actions block.
type button struct {
	ActionID string `json:"action_id"`
	Value    string `json:"value"`
}

// buttons decodes the buttons a call's blocks carry.
func buttons(t *testing.T, c slackCall) []button {
	t.Helper()
	var blocks []struct {
		Type     string   `json:"type"`
		Elements []button `json:"elements"`
	}
	if err := json.Unmarshal([]byte(c.Form.Get("blocks")), &blocks); err != nil {
		t.Fatalf("%s blocks: %v in %s", c.Method, err, c.Form.Get("blocks"))
	}
	var out []button
	for _, b := range blocks {
		if b.Type == "actions" {
			out = append(out, b.Elements...)
		}
	}
	return out
}

// blockText is every string in a call's blocks, decoded, one per line.
func blockText(t *testing.T, c slackCall) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(c.Form.Get("blocks")), &v); err != nil {
		t.Fatalf("%s blocks: %v", c.Method, err)
	}
	var b strings.Builder
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			b.WriteString(v + "\n")
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(v)
	return b.String()
}

// fixedRuns is a RunReader that returns one run, as the workflow's state
// query would.
type fixedRuns struct{ run approval.Run }

func (f fixedRuns) ReadRun(_ context.Context, id string) (approval.Run, error) {
	if id != f.run.ID {
		return approval.Run{}, fmt.Errorf("no run %s", id)
	}
	return f.run, nil
}

// notifyFixture is a config with Slack and email, a stored plan that
// destroys twelve resources, and a run waiting for approval.
type notifyFixture struct {
	acts  *activities.Activities
	slack *fakeSlack
	run   approval.Run
}

// newNotifyFixture writes the config with the workspace's notify block and
// the SMTP port (0: no email block).
func newNotifyFixture(t *testing.T, notify string, smtpPort int) *notifyFixture {
	t.Helper()
	fs, apiURL := newFakeSlack(t)
	yaml := `public_url: https://gatehouse.example.com
temporal_ui_url: https://temporal.example.com
slack:
  bot_token: ` + slackToken + `
  signing_secret: s3cret
  api_url: ` + apiURL + `
`
	if smtpPort != 0 {
		yaml += fmt.Sprintf("email:\n  smtp: { host: 127.0.0.1, port: %d, tls: none }\n  from: gatehouse@example.com\n", smtpPort)
	}
	yaml += `users:
  - { id: alice, email: alice@example.com, groups: [platform] }
  - { id: bob, email: bob@example.com, groups: [platform], slack_id: U0BOB }
  - { id: carol, email: carol@example.com, groups: [platform] }
  - { id: ci-bot, email: ci@example.com, automation: true, source: local }
workspaces:
  - name: prod-network
    environment: production
    notify:
` + notify
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	store, err := plan.NewStore(filepath.Join(t.TempDir(), "plans"))
	if err != nil {
		t.Fatal(err)
	}
	sha, err := store.Put(destroyingPlan(12))
	if err != nil {
		t.Fatal(err)
	}
	run := waitingRun(sha)
	return &notifyFixture{
		acts: &activities.Activities{
			Config: cfg, Plans: store, Logger: zaptest.NewLogger(t), Runs: fixedRuns{run: run},
			Notifier: activities.LogNotifier{Logger: zaptest.NewLogger(t)},
		},
		slack: fs, run: run,
	}
}

// destroyingPlan is a plan that creates one resource, replaces one and
// destroys n-1.
func destroyingPlan(n int) []byte {
	changes := []string{`{"address":"aws_vpc.main","type":"aws_vpc","change":{"actions":["create"]}}`,
		`{"address":"aws_subnet.r","type":"aws_subnet","change":{"actions":["delete","create"]}}`}
	for i := 1; i < n; i++ {
		changes = append(changes, fmt.Sprintf(`{"address":"aws_route.d[%d]","type":"aws_route","change":{"actions":["delete"]}}`, i))
	}
	return []byte(`{"format_version":"1.2","resource_changes":[` + strings.Join(changes, ",") + `]}`)
}

var deadline = time.Date(2026, 11, 22, 15, 0, 0, 0, time.UTC)

func waitingRun(sha string) approval.Run {
	bot := approval.Identity{ID: "ci-bot", Automation: true}
	return approval.Run{
		ID: "run-1", Workspace: "prod-network", Environment: "production",
		RequestedBy: approval.Identity{ID: "alice"}, SubmittedBy: &bot,
		Message: "rotate the <!channel> routes", Status: approval.StatusPendingApproval,
		Plan:   approval.PlanSummary{SHA256: sha, Adds: 2, Changes: 0, Destroys: 12, Replaces: 1},
		Cost:   &approval.CostSummary{Currency: "USD", MonthlyCost: 1234, MonthlyCostDelta: 512},
		Policy: &approval.PolicyResult{Warnings: []string{"routes without tags"}},
		Reasons: []approval.Reason{{
			ID: "r1", Name: "destroys-need-two", State: approval.ReasonOpen, Required: 2,
			Approvers: approval.Approvers{Groups: []string{"platform"}}, Eligible: []approval.UserID{"bob", "carol"},
			Approvals: []approval.Approval{{UserID: "bob", Comment: "lgtm"}},
		}},
		Decisions: []approval.Decision{{ID: "d1", Kind: approval.DecisionApprove, UserID: "bob", Comment: "lgtm"}},
		Deadline:  deadline,
	}
}

func requestEvent(kind activities.EventKind, messages ...approval.MessageRef) activities.Event {
	return activities.Event{
		ID: "run-1/1", Kind: kind, RunID: "run-1", Workspace: "prod-network", Status: approval.StatusPendingApproval,
		RequestedBy: "alice", Recipients: []approval.UserID{"bob", "carol"}, Deadline: deadline, Messages: messages,
	}
}

// notify runs the Notify activity on the SDK's test activity environment.
func notify(t *testing.T, a *activities.Activities, e activities.Event) (activities.NotifyResult, error) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.Notify, e)
	if err != nil {
		return activities.NotifyResult{}, err
	}
	var res activities.NotifyResult
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

func TestSlackPostsTheRequestToTheChannelAndDMs(t *testing.T) {
	f := newNotifyFixture(t, "      slack: { channel: C0PRODNET, dm_approvers: true }\n", 0)
	res, err := notify(t, f.acts, requestEvent(activities.EventApprovalRequested))
	if err != nil {
		t.Fatalf("Notify: %v", err)
	}
	posts := f.slack.called("chat.postMessage")
	if len(posts) != 3 {
		t.Fatalf("got %d chat.postMessage calls; want the channel and two DMs", len(posts))
	}
	ch := posts[0]
	if ch.Form.Get("channel") != "C0PRODNET" || ch.Form.Get("token") != slackToken || ch.Form.Get("thread_ts") != "" {
		t.Errorf("channel post %v; want a top-level post to C0PRODNET with the bot token", ch.Form)
	}
	blocks := blockText(t, ch)
	for _, want := range []string{
		"Approval needed: prod-network", "production", "alice (submitted by ci-bot)",
		"rotate the &lt;!channel&gt; routes", // people's words never mention anyone
		"+2 to add, ~0 to change, -12 to destroy (1 replaced)",
		"aws_subnet.r", "aws_route.d[9]", "… and 2 more",
		"+512.00 USD/month", "routes without tags",
		"destroys-need-two* 1/2", "approved by bob", "waiting for carol", "group platform",
		"bob approved: “lgtm”",
		fmt.Sprintf("<!date^%d^{date_short_pretty} at {time} ({ago})|2026-11-22 15:00 UTC>", deadline.Unix()),
		"https://gatehouse.example.com/ui/workspaces/prod-network/runs/run-1",
		"https://temporal.example.com/namespaces/default/workflows/run-1",
	} {
		if !strings.Contains(blocks, want) {
			t.Errorf("blocks lack %q:\n%s", want, blocks)
		}
	}
	if strings.Contains(blocks, "aws_route.d[10]") {
		t.Errorf("blocks list more than ten addresses:\n%s", blocks)
	}
	want := []button{
		{activities.ActionApprove, "prod-network/run-1"},
		{activities.ActionReject, "prod-network/run-1"},
		{activities.ActionRequestChanges, "prod-network/run-1"},
	}
	if got := buttons(t, ch); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("buttons %v; want %v", got, want)
	}
	// bob by his slack_id, carol by her email.
	opens := f.slack.called("conversations.open")
	if len(opens) != 2 || opens[0].Form.Get("users") != "U0BOB" || opens[1].Form.Get("users") != "U0CAROL" {
		t.Errorf("conversations.open %v; want U0BOB then U0CAROL", opens)
	}
	if l := f.slack.called("users.lookupByEmail"); len(l) != 1 || l[0].Form.Get("email") != "carol@example.com" {
		t.Errorf("users.lookupByEmail %v; want carol's email only", l)
	}
	if posts[1].Form.Get("channel") != "DU0BOB" || posts[2].Form.Get("channel") != "DU0CAROL" {
		t.Errorf("DMs went to %s and %s; want the DM channels", posts[1].Form.Get("channel"), posts[2].Form.Get("channel"))
	}
	wantRefs := []approval.MessageRef{
		{Kind: "slack", Channel: "C0PRODNET", TS: "1700000000.000001"},
		{Kind: "slack", Channel: "DU0BOB", TS: "1700000000.000002", User: "bob"},
		{Kind: "slack", Channel: "DU0CAROL", TS: "1700000000.000003", User: "carol"},
	}
	if fmt.Sprint(res.Posted) != fmt.Sprint(wantRefs) || len(res.Failures) != 0 {
		t.Errorf("result %+v; want posted %v and no failures", res, wantRefs)
	}
}

func TestSlackReminderUpdatesInPlaceAndRepliesInTheThread(t *testing.T) {
	f := newNotifyFixture(t, "      slack: { channel: C0PRODNET }\n", 0)
	msg := approval.MessageRef{Kind: "slack", Channel: "C0PRODNET", TS: "1699999999.000100"}
	res, err := notify(t, f.acts, requestEvent(activities.EventReminder, msg))
	if err != nil {
		t.Fatalf("Notify: %v", err)
	}
	updates := f.slack.called("chat.update")
	if len(updates) != 1 || updates[0].Form.Get("channel") != msg.Channel || updates[0].Form.Get("ts") != msg.TS {
		t.Fatalf("chat.update %v; want one update of %s/%s", updates, msg.Channel, msg.TS)
	}
	if len(buttons(t, updates[0])) != 3 {
		t.Errorf("the waiting run's update has buttons %v; want all three", buttons(t, updates[0]))
	}
	posts := f.slack.called("chat.postMessage")
	if len(posts) != 1 {
		t.Fatalf("got %d posts; want one reply and no new top-level message", len(posts))
	}
	reply := posts[0].Form
	if reply.Get("thread_ts") != msg.TS || reply.Get("channel") != msg.Channel {
		t.Errorf("reply %v; want it in the thread of %s", reply, msg.TS)
	}
	if text := reply.Get("text"); !strings.Contains(text, "Reminder") || !strings.Contains(text, "<@U0BOB> <@U0CAROL>") {
		t.Errorf("reply text %q; want a reminder mentioning both approvers", text)
	}
	if len(res.Posted) != 0 {
		t.Errorf("posted %v; want nothing new", res.Posted)
	}
}

func TestSlackButtonsDisappearWhenTheRunIsApplied(t *testing.T) {
	f := newNotifyFixture(t, "      slack: { channel: C0PRODNET }\n", 0)
	run := f.run
	run.Status = approval.StatusApplied
	run.Reasons[0].State = approval.ReasonApproved
	run.Reasons[0].Approvals = append(run.Reasons[0].Approvals, approval.Approval{UserID: "carol"})
	run.Decisions = append(run.Decisions, approval.Decision{ID: "d2", Kind: approval.DecisionApprove, UserID: "carol", Comment: "ship it"})
	f.acts.Runs = fixedRuns{run: run}
	msg := approval.MessageRef{Kind: "slack", Channel: "C0PRODNET", TS: "1699999999.000100"}
	e := requestEvent(activities.EventFinished, msg)
	e.Status = approval.StatusApplied
	if _, err := notify(t, f.acts, e); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	updates := f.slack.called("chat.update")
	if len(updates) != 1 || updates[0].Form.Get("ts") != msg.TS {
		t.Fatalf("chat.update %v; want the message updated in place", updates)
	}
	if b := buttons(t, updates[0]); len(b) != 0 {
		t.Errorf("applied run's message has buttons %v; want none", b)
	}
	blocks := blockText(t, updates[0])
	for _, want := range []string{"Applied: prod-network", "*Outcome:* applied", "carol approved: “ship it”", "destroys-need-two* 2/2"} {
		if !strings.Contains(blocks, want) {
			t.Errorf("blocks lack %q:\n%s", want, blocks)
		}
	}
	if strings.Contains(blocks, "<!date^") {
		t.Errorf("a finished run shows a deadline:\n%s", blocks)
	}
	if p := f.slack.called("chat.postMessage"); len(p) != 0 {
		t.Errorf("finishing posted %v; want only the update", p)
	}
}

func TestSlackRateLimitSetsTheNextRetryDelay(t *testing.T) {
	f := newNotifyFixture(t, "      slack: { channel: C0PRODNET }\n", 0)
	f.slack.answer = func(_ string, w http.ResponseWriter) bool {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
		return true
	}
	_, err := notify(t, f.acts, requestEvent(activities.EventApprovalRequested))
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.NonRetryable() || appErr.NextRetryDelay() != 7*time.Second {
		t.Fatalf("error %v; want a retryable error with NextRetryDelay 7s", err)
	}
}

func TestSlackRefusalsThatRetryingCannotCureAreFinal(t *testing.T) {
	f := newNotifyFixture(t, "      slack: { channel: C0PRODNET }\n", 0)
	f.acts.Config.Slack.BotToken = "xoxb-revoked"
	_, err := notify(t, f.acts, requestEvent(activities.EventApprovalRequested))
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || !strings.Contains(appErr.Message(), "invalid_auth") {
		t.Fatalf("error %v; want a non-retryable error naming invalid_auth", err)
	}
	// A server error is worth another attempt.
	f.acts.Config.Slack.BotToken = slackToken
	f.slack.answer = func(_ string, w http.ResponseWriter) bool { w.WriteHeader(http.StatusServiceUnavailable); return true }
	_, err = notify(t, f.acts, requestEvent(activities.EventApprovalRequested))
	if err == nil || (errors.As(err, &appErr) && appErr.NonRetryable()) {
		t.Fatalf("503: %v; want a retryable error", err)
	}
}

func TestSlackDMToSomeoneSlackDoesNotKnowIsReported(t *testing.T) {
	f := newNotifyFixture(t, "      slack: { dm_approvers: true }\n", 0)
	delete(f.slack.emails, "carol@example.com")
	res, err := notify(t, f.acts, requestEvent(activities.EventApprovalRequested))
	if err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if len(res.Posted) != 1 || res.Posted[0].User != "bob" {
		t.Errorf("posted %v; want bob's DM only", res.Posted)
	}
	if len(res.Failures) != 1 || !strings.Contains(res.Failures[0], "no Slack user for carol") {
		t.Errorf("failures %v; want carol named", res.Failures)
	}
}

func TestParseActionValue(t *testing.T) {
	ws, id, ok := activities.ParseActionValue(activities.ActionValue("prod-network", "run-1"))
	if !ok || ws != "prod-network" || id != "run-1" {
		t.Errorf("got %q %q %v; want prod-network run-1", ws, id, ok)
	}
	for _, bad := range []string{"", "run-1", "/run-1", "ws/"} {
		if _, _, ok := activities.ParseActionValue(bad); ok {
			t.Errorf("ParseActionValue(%q) ok; want refused", bad)
		}
	}
}
