package tests

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

// The tests in this file decide runs from Slack: signed interaction
// payloads built here, as Slack sends them, to the real gateway over HTTP,
// with a real slack-go client (Gatehouse's) talking to fakeSlack, which
// stands in for the Slack Web API and records every call.

// slackConfig: alice requests; bob (by slack_id) and carol (by the email
// users.info reports) may approve; dave is an approver of no reason of
// prod-network; victor only looks. API is fakeSlack's URL.
const slackConfig = `
slack: {bot_token: xoxb-e2e, signing_secret: slack-e2e-secret, api_url: API}
users:
  - {id: alice, email: alice@example.com, slack_id: UALICE, groups: [platform], roles: [approver], token: t-alice}
  - {id: bob, email: bob@example.com, slack_id: UBOB, groups: [platform], roles: [approver], token: t-bob}
  - {id: carol, email: carol@example.com, groups: [platform], roles: [approver], token: t-carol}
  - {id: dave, email: dave@example.com, slack_id: UDAVE, groups: [security], roles: [approver], token: t-dave}
  - {id: victor, email: victor@example.com, slack_id: UVICTOR, roles: [viewer], token: t-victor}
workspaces:
  - name: prod-network
    environment: production
    supersede: false   # several runs wait at once
    notify: {slack: {channel: C0PRODNET}}
    rules:
      - name: destroys-need-two
        when: {destroys_gt: 0}
        approvers: {groups: [platform]}
        min_approvals: 2
`

const slackSecret = "slack-e2e-secret"

// fakeSlack is the Slack Web API as far as the interactivity endpoint uses
// it: users.info and users.lookupByEmail (from a member id → email table),
// chat.postEphemeral and views.open, each call recorded with its form or JSON body.
type fakeSlack struct {
	url    string
	emails map[string]string
	mu     sync.Mutex
	calls  []fakeSlackCall
}

type fakeSlackCall struct {
	method string
	token  string
	form   url.Values
	json   map[string]any
}

func newFakeSlack(t *testing.T, emails map[string]string) *fakeSlack {
	t.Helper()
	f := &fakeSlack{emails: emails}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/"
	return f
}

func (f *fakeSlack) serve(w http.ResponseWriter, r *http.Request) {
	call := fakeSlackCall{method: strings.TrimPrefix(r.URL.Path, "/"), token: strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &call.json)
	} else {
		_ = r.ParseForm()
		call.form = r.PostForm
		if call.token == "" {
			call.token = r.PostForm.Get("token")
		}
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if call.token != "xoxb-e2e" {
		_, _ = w.Write([]byte(`{"ok": false, "error": "invalid_auth"}`))
		return
	}
	switch call.method {
	case "users.info":
		id := call.form.Get("user")
		email, ok := f.emails[id]
		if !ok {
			_, _ = w.Write([]byte(`{"ok": false, "error": "user_not_found"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "user": map[string]any{"id": id, "profile": map[string]any{"email": email}}})
	case "users.lookupByEmail":
		email := call.form.Get("email")
		for id, e := range f.emails {
			if e == email {
				_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "user": map[string]any{"id": id, "profile": map[string]any{"email": email}}})
				return
			}
		}
		_, _ = w.Write([]byte(`{"ok": false, "error": "users_not_found"}`))
	case "chat.postEphemeral":
		_, _ = w.Write([]byte(`{"ok": true, "message_ts": "1700000999.000100"}`))
	case "views.open":
		_, _ = w.Write([]byte(`{"ok": true, "view": {"id": "V0OPENED"}}`))
	case "chat.postMessage", "chat.update":
		channel := call.form.Get("channel")
		if call.json != nil {
			channel, _ = call.json["channel"].(string)
		}
		ts := call.form.Get("ts")
		if ts == "" {
			ts = fmt.Sprintf("1700000001.%06d", len(f.calls))
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": channel, "ts": ts})
	default:
		_, _ = w.Write([]byte(`{"ok": false, "error": "unknown_method"}`))
	}
}

// since returns the calls of method made after the first n calls.
func (f *fakeSlack) since(n int, method string) []fakeSlackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeSlackCall
	for _, c := range f.calls[n:] {
		if c.method == method {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeSlack) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

// newSlackStack is newStack with slackConfig: its own Temporal server,
// worker and gateway, and the fake Slack API they talk to.
func newSlackStack(t *testing.T) (*stack, *fakeSlack) {
	t.Helper()
	api := newFakeSlack(t, map[string]string{"UCAROL": "carol@example.com", "UNOBODY": "nobody@example.com"})
	cfg, err := config.Parse([]byte(strings.Replace(slackConfig, "API", strconv.Quote(api.url), 1)))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	s := stackFor(t, cfg, stackOptions{})
	return s, api
}

// slackPost sends payload as Slack does: form-encoded as payload=, signed
// with secret at ts.
func (s *stack) slackPost(payload map[string]any, secret string, ts time.Time, headers ...string) response {
	s.t.Helper()
	data, err := json.Marshal(payload)
	if err != nil {
		s.t.Fatal(err)
	}
	body := url.Values{"payload": {string(data)}}.Encode()
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + stamp + ":" + body))
	req, err := http.NewRequest(http.MethodPost, s.url+"/api/v1/slack/interactions", strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", stamp)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("slack interaction: %v", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		s.t.Errorf("slack interaction answered in %s; Slack gives up after 3s", took)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: out}
}

// slackClick is a click on one of the run message's buttons, as Slack
// sends it: the message is identified by its channel and ts.
func slackClick(slackUser, actionID string, run gateway.RunView, messageTs, triggerID string) map[string]any {
	return map[string]any{
		"type":       "block_actions",
		"api_app_id": "A0GATEHOUSE",
		"trigger_id": triggerID,
		"team":       map[string]any{"id": "T0E2E", "domain": "example"},
		"user":       map[string]any{"id": slackUser, "team_id": "T0E2E"},
		"channel":    map[string]any{"id": "C0PRODNET", "name": "prod-network"},
		"container":  map[string]any{"type": "message", "message_ts": messageTs, "channel_id": "C0PRODNET", "is_ephemeral": false},
		"message":    map[string]any{"type": "message", "ts": messageTs},
		"actions": []map[string]any{{
			"type": "button", "block_id": activities.ActionsBlockID, "action_id": actionID,
			"value": run.Workspace + "/" + run.ID, "action_ts": strconv.FormatInt(time.Now().UnixNano(), 10),
		}},
	}
}

// slackSubmission is the submission of the modal Gatehouse opened, with
// the private_metadata views.open was given and the comment typed.
func slackSubmission(slackUser, viewID string, opened map[string]any, comment string) map[string]any {
	view := opened["view"].(map[string]any)
	return map[string]any{
		"type":       "view_submission",
		"api_app_id": "A0GATEHOUSE",
		"team":       map[string]any{"id": "T0E2E"},
		"user":       map[string]any{"id": slackUser},
		"view": map[string]any{
			"id": viewID, "type": "modal", "callback_id": view["callback_id"], "private_metadata": view["private_metadata"],
			"state": map[string]any{"values": map[string]any{
				"gatehouse_comment": map[string]any{"comment": map[string]any{"type": "plain_text_input", "value": comment}},
			}},
		},
	}
}

// ephemeral insists that exactly one ephemeral message went to slackUser
// in the run's channel since call n, containing want, and returns its text.
func ephemeral(t *testing.T, api *fakeSlack, n int, slackUser, want string) string {
	t.Helper()
	posts := api.since(n, "chat.postEphemeral")
	if len(posts) != 1 {
		t.Fatalf("got %d ephemeral messages; want 1", len(posts))
	}
	p := posts[0].form
	if p.Get("channel") != "C0PRODNET" || p.Get("user") != slackUser || !strings.Contains(p.Get("text"), want) {
		t.Fatalf("got ephemeral to %s in %s: %q; want one to %s in C0PRODNET containing %q", p.Get("user"), p.Get("channel"), p.Get("text"), slackUser, want)
	}
	return p.Get("text")
}

func wantOK(t *testing.T, r response) {
	t.Helper()
	if r.status != http.StatusOK || len(r.body) != 0 {
		t.Fatalf("got %d %s; want 200 with no body", r.status, r.body)
	}
}

// decisionsBy counts the run's decisions of kind by user, and checks they
// came from Slack.
func decisionsBy(t *testing.T, run gateway.RunView, user approval.UserID, kind approval.DecisionKind) int {
	t.Helper()
	n := 0
	for _, d := range run.Decisions {
		if d.UserID == user && d.Decision == kind {
			if d.Channel != "slack" {
				t.Errorf("decision %s by %s: channel %q; want slack", kind, user, d.Channel)
			}
			n++
		}
	}
	return n
}

// unchanged insists the run still waits with no decisions.
func unchanged(t *testing.T, s *stack, run gateway.RunView) {
	t.Helper()
	got := s.get(run)
	if got.Status != approval.StatusPendingApproval || len(got.Decisions) != len(run.Decisions) || got.Reasons[0].Progress != run.Reasons[0].Progress {
		t.Fatalf("run is %s with %d decisions, %s; want it unchanged: %s, %d, %s",
			got.Status, len(got.Decisions), got.Reasons[0].Progress, run.Status, len(run.Decisions), run.Reasons[0].Progress)
	}
}

// TestSlackApprove: an approver's click approves at once (0/2 → 1/2, channel
// slack) and tells them so; a double click and a Slack retry count once; a
// second approver matched by email completes the run; a click on the
// decided run is refused.
func TestSlackApprove(t *testing.T) {
	s, api := newSlackStack(t)
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	if run.Status != approval.StatusPendingApproval || run.Reasons[0].Progress != "0/2" {
		t.Fatalf("run is %s, %s; want pending_approval 0/2", run.Status, run.Reasons[0].Progress)
	}

	n := api.count()
	click := slackClick("UBOB", activities.ActionApprove, run, "1700000001.000100", "trig-1")
	wantOK(t, s.slackPost(click, slackSecret, time.Now()))
	ephemeral(t, api, n, "UBOB", "You approved prod-network run "+run.ID)
	got := s.get(run)
	if got.Reasons[0].Progress != "1/2" || decisionsBy(t, got, "bob", approval.DecisionApprove) != 1 {
		t.Fatalf("after bob's click: %s with %d approvals by bob; want 1/2 and 1", got.Reasons[0].Progress, decisionsBy(t, got, "bob", approval.DecisionApprove))
	}

	// The second click of a double click is a new request for the same
	// action; a retry is the same request again, marked by Slack.
	double := slackClick("UBOB", activities.ActionApprove, run, "1700000001.000100", "trig-2")
	wantOK(t, s.slackPost(double, slackSecret, time.Now()))
	wantOK(t, s.slackPost(click, slackSecret, time.Now(), "X-Slack-Retry-Num", "1", "X-Slack-Retry-Reason", "http_timeout"))
	got = s.get(run)
	if got.Reasons[0].Progress != "1/2" || len(got.Decisions) != 1 {
		t.Fatalf("after a double click and a retry: %s with %d decisions; want 1/2 and 1", got.Reasons[0].Progress, len(got.Decisions))
	}

	// carol has no slack_id: users.info says who she is.
	n = api.count()
	wantOK(t, s.slackPost(slackClick("UCAROL", activities.ActionApprove, run, "1700000001.000100", "trig-3"), slackSecret, time.Now()))
	if calls := api.since(n, "users.info"); len(calls) != 1 || calls[0].form.Get("user") != "UCAROL" {
		t.Errorf("got users.info calls %v; want one for UCAROL", calls)
	}
	ephemeral(t, api, n, "UCAROL", "You approved")
	got = s.waitFor(run, approval.StatusApproved)

	// Her click retried finds the run it approved finished: it was hers.
	n = api.count()
	wantOK(t, s.slackPost(slackClick("UCAROL", activities.ActionApprove, run, "1700000001.000100", "trig-3"), slackSecret, time.Now(), "X-Slack-Retry-Num", "1"))
	ephemeral(t, api, n, "UCAROL", "You approved")
	got = s.get(got)
	if decisionsBy(t, got, "carol", approval.DecisionApprove) != 1 || len(got.Decisions) != 2 {
		t.Errorf("got decisions %+v; want bob's and carol's approvals, once each", got.Decisions)
	}

	// Too late to reject: refused at the click, no modal.
	n = api.count()
	wantOK(t, s.slackPost(slackClick("UBOB", activities.ActionReject, run, "1700000001.000100", "trig-4"), slackSecret, time.Now()))
	ephemeral(t, api, n, "UBOB", "run is approved: cannot reject")
	if opened := api.since(n, "views.open"); len(opened) != 0 {
		t.Errorf("views.open called %d times for a decided run; want none", len(opened))
	}
}

// TestSlackRefusals: unsigned, forged and stale requests are 401s; an
// unknown Slack user, the requester, an approver of no reason and a viewer
// are told why in an ephemeral message naming the rule (the REST API's
// 403 text), and nothing changes.
func TestSlackRefusals(t *testing.T) {
	s, api := newSlackStack(t)
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	click := slackClick("UBOB", activities.ActionApprove, run, "1700000002.000100", "trig-1")

	n := api.count()
	for _, tc := range []struct {
		name   string
		secret string
		at     time.Time
		want   string
	}{
		{"bad signature", "not-the-secret", time.Now(), "signature does not match"},
		{"stale timestamp", slackSecret, time.Now().Add(-6 * time.Minute), "more than 5 minutes"},
		{"future timestamp", slackSecret, time.Now().Add(6 * time.Minute), "more than 5 minutes"},
	} {
		r := s.slackPost(click, tc.secret, tc.at)
		if r.status != http.StatusUnauthorized || !strings.Contains(r.errorMessage(t), tc.want) {
			t.Errorf("%s: got %d %s; want 401 with %q", tc.name, r.status, r.body, tc.want)
		}
	}
	if api.count() != n {
		t.Errorf("unverified requests called Slack %d times; want none", api.count()-n)
	}
	unchanged(t, s, run)

	// The REST API's answer to the same people, for the same text.
	restRefusal := func(token string) string {
		r := s.decide(run, "approve", token, map[string]any{}, http.StatusForbidden)
		return r.errorMessage(t)
	}
	for _, tc := range []struct {
		name, slackUser, action, rest, want string
	}{
		{"unknown slack user", "UNOBODY", activities.ActionApprove, "", "Gatehouse does not know who you are"},
		{"slack user not found", "UGHOST", activities.ActionApprove, "", "could not look up your Slack profile"},
		{"requester approves", "UALICE", activities.ActionApprove, "t-alice", "self-approval:"},
		{"requester rejects", "UALICE", activities.ActionReject, "", "self-approval:"},
		// The REST API hides the run from dave (a 404); Slack showed it
		// to him, so he hears the rule.
		{"approver of no reason", "UDAVE", activities.ActionApprove, "", "eligibility: dave is not an approver"},
		{"approver of no reason requests changes", "UDAVE", activities.ActionRequestChanges, "", "eligibility:"},
		{"viewer", "UVICTOR", activities.ActionApprove, "t-victor", "role:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := api.count()
			wantOK(t, s.slackPost(slackClick(tc.slackUser, tc.action, run, "1700000002.000100", "trig-x"), slackSecret, time.Now()))
			text := ephemeral(t, api, n, tc.slackUser, tc.want)
			if tc.rest != "" {
				if rest := restRefusal(tc.rest); !strings.Contains(text, rest) {
					t.Errorf("got %q; want the REST API's refusal %q in it", text, rest)
				}
			}
			if opened := api.since(n, "views.open"); len(opened) != 0 {
				t.Errorf("views.open called for a refused click")
			}
			unchanged(t, s, run)
		})
	}
}

// TestSlackRejectThroughTheModal: Reject opens a modal with the click's
// trigger_id; an empty or too long comment comes back as a modal error;
// a comment rejects the run (channel slack) and closes the modal; the
// submission retried counts once.
func TestSlackRejectThroughTheModal(t *testing.T) {
	s, api := newSlackStack(t)
	run := s.createRun("prod-network", "t-alice", "prod-network.json")

	n := api.count()
	wantOK(t, s.slackPost(slackClick("UBOB", activities.ActionReject, run, "1700000003.000100", "trig-reject"), slackSecret, time.Now()))
	opened := openedModal(t, api, n, "trig-reject")
	unchanged(t, s, run)

	for _, tc := range []struct{ name, comment, want string }{
		{"blank comment", "   ", "comment"},
		{"too long", strings.Repeat("é", 2100), "longer than 4096 bytes"},
	} {
		r := s.slackPost(slackSubmission("UBOB", "V0REJECT", opened, tc.comment), slackSecret, time.Now())
		var resp struct {
			ResponseAction string            `json:"response_action"`
			Errors         map[string]string `json:"errors"`
		}
		r.decode(t, &resp)
		if r.status != http.StatusOK || resp.ResponseAction != "errors" || !strings.Contains(resp.Errors["gatehouse_comment"], tc.want) {
			t.Fatalf("%s: got %d %s; want 200 response_action errors on gatehouse_comment containing %q", tc.name, r.status, r.body, tc.want)
		}
		unchanged(t, s, run)
	}

	submit := slackSubmission("UBOB", "V0REJECT", opened, "destroys the legacy subnet still in use")
	n = api.count()
	wantOK(t, s.slackPost(submit, slackSecret, time.Now()))
	ephemeral(t, api, n, "UBOB", "You rejected prod-network run "+run.ID)
	got := s.waitFor(run, approval.StatusRejected)
	wantOK(t, s.slackPost(submit, slackSecret, time.Now(), "X-Slack-Retry-Num", "1"))
	got = s.get(got)
	if decisionsBy(t, got, "bob", approval.DecisionReject) != 1 || len(got.Decisions) != 1 {
		t.Fatalf("got decisions %+v; want bob's one reject", got.Decisions)
	}
	if c := got.Decisions[0].Comment; c != "destroys the legacy subnet still in use" {
		t.Errorf("reject comment: got %q; want the one typed", c)
	}

	// Another modal on the decided run: refused in the modal.
	r := s.slackPost(slackSubmission("UCAROL", "V0LATE", opened, "me too"), slackSecret, time.Now())
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"response_action":"errors"`) || !strings.Contains(string(r.body), "run is rejected") {
		t.Errorf("late submission: got %d %s; want a modal error saying the run is rejected", r.status, r.body)
	}
}

// openedModal insists views.open was called once since call n with
// triggerID and Gatehouse's comment form, and returns what it was sent.
func openedModal(t *testing.T, api *fakeSlack, n int, triggerID string) map[string]any {
	t.Helper()
	calls := api.since(n, "views.open")
	if len(calls) != 1 {
		t.Fatalf("got %d views.open calls; want 1", len(calls))
	}
	body := calls[0].json
	view, _ := body["view"].(map[string]any)
	if body["trigger_id"] != triggerID || view["type"] != "modal" || view["callback_id"] != "gatehouse_decision" {
		t.Fatalf("views.open got %v; want a gatehouse_decision modal with trigger_id %s", body, triggerID)
	}
	data, _ := json.Marshal(view["blocks"])
	if !strings.Contains(string(data), `"block_id":"gatehouse_comment"`) || !strings.Contains(string(data), `"multiline":true`) || strings.Contains(string(data), `"optional":true`) {
		t.Fatalf("modal blocks %s; want a required multiline gatehouse_comment input", data)
	}
	return body
}

// TestSlackRequestChanges: Request changes opens the modal; its
// submission sends the run back to the requester with the comment.
func TestSlackRequestChanges(t *testing.T) {
	s, api := newSlackStack(t)
	run := s.createRun("prod-network", "t-alice", "prod-network.json")

	n := api.count()
	wantOK(t, s.slackPost(slackClick("UCAROL", activities.ActionRequestChanges, run, "1700000004.000100", "trig-rc"), slackSecret, time.Now()))
	opened := openedModal(t, api, n, "trig-rc")
	var meta map[string]string
	if err := json.Unmarshal([]byte(opened["view"].(map[string]any)["private_metadata"].(string)), &meta); err != nil ||
		meta["ws"] != run.Workspace || meta["run"] != run.ID || meta["kind"] != "request_changes" {
		t.Fatalf("private_metadata %v (%v); want the workspace, run and kind", meta, err)
	}

	n = api.count()
	wantOK(t, s.slackPost(slackSubmission("UCAROL", "V0CHANGES", opened, "split the subnet replacement out"), slackSecret, time.Now()))
	ephemeral(t, api, n, "UCAROL", "You requested changes on prod-network run "+run.ID)
	got := s.waitFor(run, approval.StatusChangesRequested)
	if decisionsBy(t, got, "carol", approval.DecisionRequestChanges) != 1 || got.Decisions[0].Comment != "split the subnet replacement out" {
		t.Fatalf("got decisions %+v; want carol's request for changes with her comment", got.Decisions)
	}
}
