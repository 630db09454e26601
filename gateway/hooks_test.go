package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/labstack/echo/v4"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/config"
)

// webhookConfig has a hooked terraform workspace, one without hooks, and
// GitHub mappings for the fixtures' repository.
const webhookConfig = `
users:
  - {id: alice, email: alice@example.com, groups: [platform], roles: [approver], token: t-alice}
  - {id: victor, email: victor@example.com, roles: [viewer], token: t-victor}
  - {id: ci-bot, email: ci@example.com, source: local, automation: true, token: t-ci}
github:
  webhook_secret: gh-secret
  automation_user: ci-bot
  users: {AiLisp: alice, octo-viewer: victor}
workspaces:
  - name: net
    terraform: {git: {url: "file:///nonexistent/infra.git"}}
    hooks: {secret: hook-secret}
    github: {repository: ailisp/gcbapp-buildconfig-example, branch: master, paths: ["infra/network/**"]}
    rules: [{name: r, approvers: {groups: [platform]}}]
  - name: iam
    terraform: {git: {url: "file:///nonexistent/infra.git"}}
    github: {repository: AILISP/GCBAPP-BUILDCONFIG-EXAMPLE, branch: master}
  - name: other-branch
    terraform: {git: {url: "file:///nonexistent/infra.git"}}
    github: {repository: ailisp/gcbapp-buildconfig-example, branch: main}
  - name: other-repo
    terraform: {git: {url: "file:///nonexistent/infra.git"}}
    github: {repository: ailisp/reallyfastci, branch: master}
  - name: plain
    rules: [{name: r, approvers: {groups: [platform]}}]
`

func webhookTestConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(webhookConfig))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// gatehouseSignature signs body as Gatehouse signs its own webhooks.
func gatehouseSignature(secret, ts, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func serve(t *testing.T, h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// TestHookRefusesWhatItCannotVerify: forged, unsigned, stale and future
// deliveries are 401s, and unknown workspaces or ones without hooks 404s,
// all before a run could start (this gateway has no starter: reaching it
// would panic). A verified delivery with a bad body is a 400, which proves
// the verification passed.
func TestHookRefusesWhatItCannotVerify(t *testing.T) {
	h := New(Options{Config: webhookTestConfig(t), Logger: zap.NewNop()})
	now := time.Now()
	ts := func(d time.Duration) string { return strconv.FormatInt(now.Add(d).Unix(), 10) }
	body := `{"ref": "main", "message": "deploy", "requested_by": "nobody"}`
	for _, tc := range []struct {
		name, path, body, ts, sig string
		want                      int
		wantErr                   string
	}{
		{"forged", "/api/v1/hooks/net", body, ts(0), gatehouseSignature("wrong", ts(0), body), 401, "signature mismatch"},
		{"body changed", "/api/v1/hooks/net", body + " ", ts(0), gatehouseSignature("hook-secret", ts(0), body), 401, "signature mismatch"},
		{"unsigned", "/api/v1/hooks/net", body, "", "", 401, "timestamp"},
		{"no signature", "/api/v1/hooks/net", body, ts(0), "", 401, "signature mismatch"},
		{"stale", "/api/v1/hooks/net", body, ts(-6 * time.Minute), gatehouseSignature("hook-secret", ts(-6*time.Minute), body), 401, "outside the accepted window"},
		{"future", "/api/v1/hooks/net", body, ts(6 * time.Minute), gatehouseSignature("hook-secret", ts(6*time.Minute), body), 401, "outside the accepted window"},
		{"no hooks", "/api/v1/hooks/plain", body, ts(0), gatehouseSignature("hook-secret", ts(0), body), 404, "no hook"},
		{"unknown workspace", "/api/v1/hooks/nope", body, ts(0), gatehouseSignature("hook-secret", ts(0), body), 404, "no hook"},
		{"unknown user", "/api/v1/hooks/net", body, ts(0), gatehouseSignature("hook-secret", ts(0), body), 400, `requested_by: unknown user \"nobody\"`},
		{"viewer", "/api/v1/hooks/net", `{"requested_by": "victor"}`, ts(0), gatehouseSignature("hook-secret", ts(0), `{"requested_by": "victor"}`), 403, "viewers may not start runs"},
		{"no requester", "/api/v1/hooks/net", `{"ref": "main"}`, ts(0), gatehouseSignature("hook-secret", ts(0), `{"ref": "main"}`), 400, "requested_by: required"},
		{"unknown field", "/api/v1/hooks/net", `{"requested_by": "alice", "plan": {}}`, ts(-4 * time.Minute), gatehouseSignature("hook-secret", ts(-4*time.Minute), `{"requested_by": "alice", "plan": {}}`), 400, `unknown field \"plan\"`},
		{"bad ref", "/api/v1/hooks/net", `{"requested_by": "alice", "ref": "--upload-pack=x"}`, ts(0), gatehouseSignature("hook-secret", ts(0), `{"requested_by": "alice", "ref": "--upload-pack=x"}`), 400, "ref:"},
		{"not json", "/api/v1/hooks/net", `deploy please`, ts(0), gatehouseSignature("hook-secret", ts(0), `deploy please`), 400, "invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			if tc.ts != "" {
				req.Header.Set(activities.HeaderTimestamp, tc.ts)
			}
			if tc.sig != "" {
				req.Header.Set(activities.HeaderSignature, tc.sig)
			}
			rec := serve(t, h, req)
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), `"error"`) || !strings.Contains(rec.Body.String(), tc.wantErr) {
				t.Errorf("got %d %s; want %d with an error containing %q", rec.Code, rec.Body, tc.want, tc.wantErr)
			}
		})
	}
}

// TestHookIgnoresBearerTokens: the route authenticates by signature only;
// a valid token does not stand in for it.
func TestHookIgnoresBearerTokens(t *testing.T) {
	h := New(Options{Config: webhookTestConfig(t), Logger: zap.NewNop()})
	req := httptest.NewRequest(http.MethodPost, "/api/v1/hooks/net", strings.NewReader(`{"requested_by": "alice"}`))
	req.Header.Set("Authorization", "Bearer t-alice")
	if rec := serve(t, h, req); rec.Code != http.StatusUnauthorized {
		t.Errorf("got %d %s; want 401", rec.Code, rec.Body)
	}
}

// TestHookIdempotencyKey: a replayed delivery (same timestamp and
// signature) has the same key and another delivery another; a caller's
// Idempotency-Key wins; keys never collide with the API's.
func TestHookIdempotencyKey(t *testing.T) {
	key := func(headers ...string) string {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		k, err := hookIdempotencyKey(echo.New().NewContext(req, httptest.NewRecorder()))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	first := key(activities.HeaderTimestamp, "100", activities.HeaderSignature, "sha256=aa")
	if again := key(activities.HeaderTimestamp, "100", activities.HeaderSignature, "sha256=aa"); again != first {
		t.Errorf("replay: got key %q; want %q", again, first)
	}
	if other := key(activities.HeaderTimestamp, "101", activities.HeaderSignature, "sha256=bb"); other == first {
		t.Errorf("another delivery got the same key %q", other)
	}
	if got := key("Idempotency-Key", "deploy-42", activities.HeaderTimestamp, "100", activities.HeaderSignature, "sha256=aa"); got != "hook:deploy-42" {
		t.Errorf("with Idempotency-Key: got %q; want hook:deploy-42", got)
	}
}

// TestHookStart: the run is the named person's, submitted by no one, and
// records that a hook started it and the ref it asked for.
func TestHookStart(t *testing.T) {
	cfg := webhookTestConfig(t)
	ws, _ := cfg.Workspace("net")
	alice, _ := cfg.User("alice")
	req := hookStart(ws, alice.Identity, hookBody{Ref: "release", Message: "m", RequestedBy: "alice"}, "hook:k")
	if req.Workspace != "net" || req.RequestedBy.ID != "alice" || req.SubmittedBy != nil || req.Message != "m" || req.IdempotencyKey != "hook:k" {
		t.Errorf("got %+v; want alice's run on net, submitted by no one", req)
	}
	if req.Origin.Trigger != "hook" || req.Origin.Ref != "release" || req.Plan.SHA256 != "" {
		t.Errorf("got origin %+v, plan %q; want trigger hook, ref release, no plan", req.Origin, req.Plan.SHA256)
	}
}
