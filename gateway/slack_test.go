package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
)

// slackTestConfig has users matched by slack_id (alice, dan), by email
// (bob), and two accounts sharing an email (carol, SSO and local). API is
// the fake Slack Web API's URL.
const slackTestConfig = `
slack: {bot_token: xoxb-test, signing_secret: slack-secret, api_url: API}
users:
  - {id: alice, email: alice@example.com, slack_id: UALICE, groups: [platform], roles: [approver], token: t-alice}
  - {id: bob, email: Bob@Example.com, groups: [platform], roles: [approver], token: t-bob}
  - {id: carol, email: carol@example.com, source: sso, roles: [approver]}
  - {id: carol-local, email: carol@example.com, source: local, roles: [approver]}
  - {id: dan, email: dan@example.com, slack_id: UDAN, roles: [approver]}
workspaces:
  - name: plain
    rules: [{name: r, approvers: {groups: [platform]}}]
`

// fakeSlackAPI stands in for the Slack Web API: users.info answers from
// emails (by member id), and every call is recorded.
type fakeSlackAPI struct {
	url    string
	emails map[string]string
	mu     sync.Mutex
	calls  []slackCall
}

type slackCall struct {
	method string
	form   url.Values
}

func newFakeSlackAPI(t *testing.T, emails map[string]string) *fakeSlackAPI {
	t.Helper()
	f := &fakeSlackAPI{emails: emails}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/"
	return f
}

func (f *fakeSlackAPI) serve(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	method := strings.TrimPrefix(r.URL.Path, "/")
	f.mu.Lock()
	f.calls = append(f.calls, slackCall{method: method, form: r.PostForm})
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	switch method {
	case "users.info":
		id := r.PostForm.Get("user")
		email, ok := f.emails[id]
		if !ok {
			_, _ = w.Write([]byte(`{"ok": false, "error": "user_not_found"}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "user": map[string]any{"id": id, "profile": map[string]any{"email": email}}})
	case "chat.postEphemeral":
		_, _ = w.Write([]byte(`{"ok": true, "message_ts": "1.2"}`))
	default:
		_, _ = w.Write([]byte(`{"ok": false, "error": "unknown_method"}`))
	}
}

func (f *fakeSlackAPI) called(method string) []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []url.Values
	for _, c := range f.calls {
		if c.method == method {
			out = append(out, c.form)
		}
	}
	return out
}

func slackTestSetup(t *testing.T, emails map[string]string) (*config.Config, *fakeSlackAPI) {
	t.Helper()
	api := newFakeSlackAPI(t, emails)
	cfg, err := config.Parse([]byte(strings.Replace(slackTestConfig, "API", strconv.Quote(api.url), 1)))
	if err != nil {
		t.Fatal(err)
	}
	return cfg, api
}

// slackSign signs body as Slack does, at ts.
func slackSign(secret, ts, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":" + body))
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

func slackRequest(body, ts, sig string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/slack/interactions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if ts != "" {
		req.Header.Set("X-Slack-Request-Timestamp", ts)
	}
	if sig != "" {
		req.Header.Set("X-Slack-Signature", sig)
	}
	return req
}

// clickBody is a block_actions payload, form-encoded as Slack sends it.
func clickBody(slackUser, actionID, value string) string {
	payload := map[string]any{
		"type": "block_actions", "trigger_id": "trig-1",
		"team": map[string]any{"id": "T1"}, "user": map[string]any{"id": slackUser},
		"channel":   map[string]any{"id": "C1"},
		"container": map[string]any{"type": "message", "message_ts": "100.1", "channel_id": "C1"},
		"actions":   []map[string]any{{"type": "button", "block_id": activities.ActionsBlockID, "action_id": actionID, "value": value, "action_ts": "100.2"}},
	}
	data, _ := json.Marshal(payload)
	return url.Values{"payload": {string(data)}}.Encode()
}

// TestSlackSignature: forged, altered, unsigned, stale and future requests
// are 401s with an error; correctly signed ones are answered 200 even when
// there is nothing to do, before anything could reach a run (this gateway
// has no starter: reaching it would panic).
func TestSlackSignature(t *testing.T) {
	cfg, api := slackTestSetup(t, nil)
	h := New(Options{Config: cfg, Logger: zap.NewNop()})
	now := time.Now()
	ts := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	unknownType := url.Values{"payload": {`{"type": "shortcut", "user": {"id": "UALICE"}}`}}.Encode()
	foreign := clickBody("UALICE", "someone_elses_button", "plain/r-1")
	noRun := clickBody("UALICE", activities.ActionApprove, "no-slash")
	for _, tc := range []struct {
		name, body, ts, sig string
		want                int
		wantErr             string
	}{
		{"forged", unknownType, ts(0), slackSign("wrong", ts(0), unknownType), 401, "signature does not match"},
		{"body changed", unknownType + "&x=1", ts(0), slackSign("slack-secret", ts(0), unknownType), 401, "signature does not match"},
		{"timestamp changed", unknownType, ts(time.Second), slackSign("slack-secret", ts(0), unknownType), 401, "signature does not match"},
		{"not hex", unknownType, ts(0), "v0=zz", 401, "signature does not match"},
		{"no v0", unknownType, ts(0), strings.TrimPrefix(slackSign("slack-secret", ts(0), unknownType), "v0="), 401, "signature does not match"},
		{"unsigned", unknownType, "", "", 401, "are required"},
		{"no signature", unknownType, ts(0), "", 401, "are required"},
		{"no timestamp", unknownType, "", slackSign("slack-secret", ts(0), unknownType), 401, "are required"},
		{"stale", unknownType, ts(-6 * time.Minute), slackSign("slack-secret", ts(-6*time.Minute), unknownType), 401, "more than 5 minutes"},
		{"future", unknownType, ts(6 * time.Minute), slackSign("slack-secret", ts(6*time.Minute), unknownType), 401, "more than 5 minutes"},
		{"old but in time", unknownType, ts(-4 * time.Minute), slackSign("slack-secret", ts(-4*time.Minute), unknownType), 200, ""},
		{"unknown type", unknownType, ts(0), slackSign("slack-secret", ts(0), unknownType), 200, ""},
		{"not a form", `{"type": "block_actions"}`, ts(0), slackSign("slack-secret", ts(0), `{"type": "block_actions"}`), 200, ""},
		{"payload not json", "payload=%7Bnope", ts(0), slackSign("slack-secret", ts(0), "payload=%7Bnope"), 200, ""},
		{"empty", "", ts(0), slackSign("slack-secret", ts(0), ""), 200, ""},
		{"another app's button", foreign, ts(0), slackSign("slack-secret", ts(0), foreign), 200, ""},
		{"value names no run", noRun, ts(0), slackSign("slack-secret", ts(0), noRun), 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(t, h, slackRequest(tc.body, tc.ts, tc.sig))
			if rec.Code != tc.want {
				t.Fatalf("got %d %s; want %d", rec.Code, rec.Body, tc.want)
			}
			if tc.want != 200 && (!strings.Contains(rec.Body.String(), `"error"`) || !strings.Contains(rec.Body.String(), tc.wantErr)) {
				t.Errorf("got %s; want an error containing %q", rec.Body, tc.wantErr)
			}
			if tc.want == 200 && rec.Body.Len() != 0 {
				t.Errorf("got body %s; want none", rec.Body)
			}
		})
	}
	if calls := len(api.calls); calls != 0 {
		t.Errorf("got %d Slack API calls; want none for requests with nothing to do", calls)
	}
}

// TestSlackNotConfigured: without a slack block the endpoint does not exist.
func TestSlackNotConfigured(t *testing.T) {
	h := New(Options{Config: webhookTestConfig(t), Logger: zap.NewNop()})
	body := clickBody("UALICE", activities.ActionApprove, "plain/r-1")
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	rec := serve(t, h, slackRequest(body, ts, slackSign("slack-secret", ts, body)))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "slack is not configured") {
		t.Errorf("got %d %s; want 404 slack is not configured", rec.Code, rec.Body)
	}
}

// TestSlackIgnoresBearerTokens: a valid token does not stand in for
// Slack's signature.
func TestSlackIgnoresBearerTokens(t *testing.T) {
	cfg, _ := slackTestSetup(t, nil)
	h := New(Options{Config: cfg, Logger: zap.NewNop()})
	req := slackRequest(clickBody("UALICE", activities.ActionApprove, "plain/r-1"), "", "")
	req.Header.Set("Authorization", "Bearer t-alice")
	if rec := serve(t, h, req); rec.Code != http.StatusUnauthorized {
		t.Errorf("got %d %s; want 401", rec.Code, rec.Body)
	}
}

// TestSlackUserMapping: slack_id first; else the email users.info reports,
// case-insensitively, among users without a slack_id; an email two users
// share, or none, matches no one.
func TestSlackUserMapping(t *testing.T) {
	cfg, api := slackTestSetup(t, map[string]string{
		"UBOB":    "bob@example.com",
		"UCAROL":  "carol@example.com",
		"UNOBODY": "nobody@example.com",
		"UFAKE":   "dan@example.com", // dan has a slack_id: an email is not enough
		"UBLANK":  "",
	})
	h := &slackHandler{cfg: cfg, api: newSlackClient(cfg.Slack), logger: zap.NewNop()}
	for _, tc := range []struct {
		slackID string
		want    approval.UserID // "" for no match
		lookup  bool            // whether users.info is asked
	}{
		{"UALICE", "alice", false},
		{"UDAN", "dan", false},
		{"UBOB", "bob", true},
		{"UCAROL", "", true},
		{"UNOBODY", "", true},
		{"UFAKE", "", true},
		{"UBLANK", "", true},
		{"", "", false},
	} {
		t.Run(tc.slackID, func(t *testing.T) {
			before := len(api.called("users.info"))
			u, ok, err := h.slackUser(context.Background(), tc.slackID)
			if err != nil {
				t.Fatal(err)
			}
			if ok != (tc.want != "") || u.ID != tc.want {
				t.Errorf("got %q, %v; want %q", u.ID, ok, tc.want)
			}
			if asked := len(api.called("users.info")) > before; asked != tc.lookup {
				t.Errorf("users.info asked: got %v; want %v", asked, tc.lookup)
			}
		})
	}
	if _, _, err := h.slackUser(context.Background(), "UGONE"); err == nil {
		t.Error("users.info failing: got no error; want one")
	}
}

// TestSlackUnknownUserIsToldInPlainWords: a signed click by someone
// Gatehouse does not know is answered 200 with an ephemeral message, before
// any run is read (this gateway has no starter).
func TestSlackUnknownUserIsToldInPlainWords(t *testing.T) {
	cfg, api := slackTestSetup(t, map[string]string{"UNOBODY": "nobody@example.com"})
	h := New(Options{Config: cfg, Logger: zap.NewNop()})
	body := clickBody("UNOBODY", activities.ActionApprove, "plain/r-1")
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	if rec := serve(t, h, slackRequest(body, ts, slackSign("slack-secret", ts, body))); rec.Code != http.StatusOK {
		t.Fatalf("got %d %s; want 200", rec.Code, rec.Body)
	}
	posts := api.called("chat.postEphemeral")
	if len(posts) != 1 {
		t.Fatalf("got %d ephemeral messages; want 1", len(posts))
	}
	if p := posts[0]; p.Get("channel") != "C1" || p.Get("user") != "UNOBODY" || !strings.Contains(p.Get("text"), "does not know who you are") {
		t.Errorf("got ephemeral %v; want one to UNOBODY in C1 saying Gatehouse does not know them", p)
	}
}

// TestSlackKeys: a click's key is its action's identity and round, within
// the Idempotency-Key rules whatever Slack sends.
func TestSlackKeys(t *testing.T) {
	if got, want := slackKey("slack", "T1", "U1", "100.1", activities.ActionApprove, "r1"), "slack:T1:U1:100.1:gatehouse_approve:r1"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	for _, long := range []string{strings.Repeat("x", 300), "caf\u00e9", "a\nb"} {
		got := slackKey("slack", long)
		if len(got) > maxIdempotencyKey || !printableASCII(got) || got != slackKey("slack", long) {
			t.Errorf("slackKey(%q) = %q; want a stable printable key of at most %d bytes", long, got, maxIdempotencyKey)
		}
	}
}

// TestParseSlackTarget: a button's value is "<workspace>/<run id>".
func TestParseSlackTarget(t *testing.T) {
	if got, ok := parseSlackTarget("prod-network/r-1"); !ok || got != (slackTarget{"prod-network", "r-1"}) {
		t.Errorf("got %v, %v; want prod-network r-1", got, ok)
	}
	for _, bad := range []string{"", "prod", "/r-1", "prod/", "prod/a b"} {
		if _, ok := parseSlackTarget(bad); ok {
			t.Errorf("parseSlackTarget(%q): got ok; want refused", bad)
		}
	}
}

// TestSlackBlockActionKey: the second click of a double click (a new
// trigger and action_ts) and a retry are the same action; another message,
// button, member or round is another.
func TestSlackBlockActionKey(t *testing.T) {
	click := func(user, ts, trigger, actionID, actionTs string) (slack.InteractionCallback, *slack.BlockAction) {
		cb := slack.InteractionCallback{TriggerID: trigger, Team: slack.Team{ID: "T1"}, User: slack.User{ID: user},
			Container: slack.Container{MessageTs: ts}}
		return cb, &slack.BlockAction{ActionID: actionID, ActionTs: actionTs}
	}
	round1 := approval.Run{Rounds: make([]approval.Round, 1)}
	round2 := approval.Run{Rounds: make([]approval.Round, 2)}
	key := func(run approval.Run, user, ts, trigger, actionID, actionTs string) string {
		cb, act := click(user, ts, trigger, actionID, actionTs)
		return blockActionKey(cb, act, run)
	}
	first := key(round1, "U1", "100.1", "trig-1", activities.ActionApprove, "100.2")
	if again := key(round1, "U1", "100.1", "trig-2", activities.ActionApprove, "100.3"); again != first {
		t.Errorf("double click: got %q and %q; want one key", first, again)
	}
	for name, other := range map[string]string{
		"another member":  key(round1, "U2", "100.1", "trig-1", activities.ActionApprove, "100.2"),
		"another message": key(round1, "U1", "200.1", "trig-1", activities.ActionApprove, "100.2"),
		"another button":  key(round1, "U1", "100.1", "trig-1", activities.ActionReject, "100.2"),
		"another round":   key(round2, "U1", "100.1", "trig-1", activities.ActionApprove, "100.2"),
	} {
		if other == first {
			t.Errorf("%s: got the same key %q; want another", name, first)
		}
	}
}

// TestSlackRefusalWords: a domain error reaches the clicker as the REST
// API words it; a timeout says the decision may still land; anything else
// is "internal error", without its text.
func TestSlackRefusalWords(t *testing.T) {
	h := &slackHandler{logger: zap.NewNop()}
	target := slackTarget{Workspace: "plain", RunID: "r-1"}
	expired, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want string
	}{
		{"domain", context.Background(), approval.Errorf(approval.CodeForbidden, "self-approval: alice requested this run and may not approve it"),
			"Not recorded: you cannot approve plain run r-1: self-approval: alice requested this run and may not approve it"},
		{"timeout", expired, errors.New("rpc error: code = DeadlineExceeded"), "did not answer in time"},
		{"internal", context.Background(), errors.New("dial tcp 10.0.0.1:7233: secret detail"), "internal error"},
	} {
		got := h.refusal(tc.ctx, approval.DecisionApprove, target, tc.err)
		if !strings.Contains(got, tc.want) || strings.Contains(got, "secret detail") {
			t.Errorf("%s: got %q; want it to contain %q", tc.name, got, tc.want)
		}
	}
}
