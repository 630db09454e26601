package gateway

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/config"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "github", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// gitHubSignature signs body as GitHub does.
func gitHubSignature(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func gitHubRequest(event, delivery, sig string, body []byte) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/api/v1/github/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerGitHubEvent, event)
	req.Header.Set(headerGitHubDelivery, delivery)
	if sig != "" {
		req.Header.Set(headerGitHubSignature, sig)
	}
	return req
}

// TestGitHubSignature: only the HMAC of the exact body with the secret
// passes.
func TestGitHubSignature(t *testing.T) {
	body := fixture(t, "push.json")
	good := gitHubSignature("gh-secret", body)
	for _, tc := range []struct {
		name, header string
		body         []byte
		ok           bool
	}{
		{"valid", good, body, true},
		{"wrong secret", gitHubSignature("other", body), body, false},
		{"body changed", good, append(slices.Clone(body), ' '), false},
		{"missing", "", body, false},
		{"sha1 only", "sha1=" + strings.Repeat("0", 40), body, false},
		{"not hex", "sha256=zz", body, false},
		{"uppercase hex", "sha256=" + strings.ToUpper(strings.TrimPrefix(good, "sha256=")), body, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := verifyGitHubSignature("gh-secret", tc.header, tc.body); (err == nil) != tc.ok {
				t.Errorf("got %v; want ok %v", err, tc.ok)
			}
		})
	}
}

// TestGitHubWebhookAnswersWithoutStarting covers every answer that starts
// nothing (this gateway has no starter: reaching it would panic).
func TestGitHubWebhookAnswersWithoutStarting(t *testing.T) {
	h := New(Options{Config: webhookTestConfig(t), Logger: zap.NewNop()})
	merged := fixture(t, "pull_request.closed.merged.json")
	unmerged := fixture(t, "pull_request.closed.unmerged.json")
	ping := []byte(`{"zen": "Keep it logically awesome.", "hook_id": 1}`)
	for _, tc := range []struct {
		name, event, sig string
		body             []byte
		want             int
		wantBody         string
	}{
		{"bad signature", "pull_request", gitHubSignature("wrong", merged), merged, 401, "signature mismatch"},
		{"unsigned", "pull_request", "", merged, 401, "missing X-Hub-Signature-256"},
		{"ping", "ping", gitHubSignature("gh-secret", ping), ping, 200, `"status":"ok"`},
		{"unrelated event", "issues", gitHubSignature("gh-secret", ping), ping, 202, `"ignored":"event \"issues\" starts no runs`},
		{"closed unmerged", "pull_request", gitHubSignature("gh-secret", unmerged), unmerged, 202, `"runs":[]`},
		{"no workspace matches", "push", gitHubSignature("gh-secret", fixture(t, "push.new-branch.json")), fixture(t, "push.new-branch.json"), 202, `{"runs":[]}`},
		{"malformed push", "push", gitHubSignature("gh-secret", []byte(`{"ref": "refs/heads/master", "after": "nope", "repository": {"full_name": "a/b"}}`)),
			[]byte(`{"ref": "refs/heads/master", "after": "nope", "repository": {"full_name": "a/b"}}`), 400, `after: \"nope\" is not a commit id`},
		{"not json", "push", gitHubSignature("gh-secret", []byte(`nope`)), []byte(`nope`), 400, "invalid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(t, h, gitHubRequest(tc.event, "d-1", tc.sig, tc.body))
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.wantBody) {
				t.Errorf("got %d %s; want %d containing %s", rec.Code, rec.Body, tc.want, tc.wantBody)
			}
		})
	}
}

// TestGitHubWebhookNotConfigured: without a github block the endpoint
// does not exist.
func TestGitHubWebhookNotConfigured(t *testing.T) {
	cfg, err := config.Parse([]byte(`
users: [{id: alice, email: alice@example.com, token: t-alice}]
workspaces: [{name: ws}]
`))
	if err != nil {
		t.Fatal(err)
	}
	body := fixture(t, "push.json")
	rec := serve(t, New(Options{Config: cfg, Logger: zap.NewNop()}), gitHubRequest("push", "d-1", gitHubSignature("gh-secret", body), body))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"error"`) {
		t.Errorf("got %d %s; want 404 with an error", rec.Code, rec.Body)
	}
}

// TestParseGitHubFixtures reads the real deliveries in testdata/github.
func TestParseGitHubFixtures(t *testing.T) {
	for _, tc := range []struct {
		file, event string
		want        gitHubChange
		ignored     bool
	}{
		{"pull_request.closed.merged.json", "pull_request", gitHubChange{
			Repository: "ailisp/gcbapp-buildconfig-example", Branch: "master",
			Commit: "a21683865c088b5fe1906cf6552d15a285a4986d", Since: "8357af6fef17bd180014e419f049944cb491238f", Actor: "ailisp",
		}, false},
		{"push.json", "push", gitHubChange{
			Repository: "ailisp/gcbapp-buildconfig-example", Branch: "master",
			Commit: "a21683865c088b5fe1906cf6552d15a285a4986d", Since: "8357af6fef17bd180014e419f049944cb491238f", Actor: "ailisp",
		}, false},
		{"push.new-branch.json", "push", gitHubChange{
			Repository: "Codertocat/Hello-World", Branch: "master",
			Commit: "6113728f27ae82c7b1a177c8d03f9e96e0adf246", Since: "", Actor: "Codertocat",
		}, false},
		{"pull_request.closed.unmerged.json", "pull_request", gitHubChange{}, true},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, ignored, err := parseGitHubEvent(tc.event, fixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if (ignored != "") != tc.ignored {
				t.Fatalf("ignored %q; want ignored %v", ignored, tc.ignored)
			}
			got.Summary = ""
			if got != tc.want {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}

// TestParsePushIgnoresTagsAndDeletions: neither has a commit to plan.
func TestParsePushIgnoresTagsAndDeletions(t *testing.T) {
	for name, body := range map[string]string{
		"tag":     `{"ref": "refs/tags/v1", "before": "` + strings.Repeat("0", 40) + `", "after": "` + strings.Repeat("a", 40) + `", "repository": {"full_name": "a/b"}}`,
		"deleted": `{"ref": "refs/heads/x", "before": "` + strings.Repeat("a", 40) + `", "after": "` + strings.Repeat("0", 40) + `", "deleted": true, "repository": {"full_name": "a/b"}}`,
	} {
		if _, ignored, err := parseGitHubEvent("push", []byte(body)); err != nil || ignored == "" {
			t.Errorf("%s: got ignored %q, err %v; want ignored", name, ignored, err)
		}
	}
}

// TestGitHubTargets: the repository matches ignoring case, the branch
// exactly; other repositories and branches are left out.
func TestGitHubTargets(t *testing.T) {
	cfg := webhookTestConfig(t)
	var names []string
	for _, ws := range gitHubTargets(cfg.Workspaces, gitHubChange{Repository: "AiLisp/gcbapp-buildconfig-example", Branch: "master"}) {
		names = append(names, ws.Name)
	}
	if want := []string{"net", "iam"}; !slices.Equal(names, want) {
		t.Errorf("got %q; want %q", names, want)
	}
}

// TestGitHubRequester: a mapped login is the requester, submitted by the
// automation user (logins ignore case, as on GitHub); anyone else's runs
// are the automation user's own, on behalf of nobody; a viewer starts none.
func TestGitHubRequester(t *testing.T) {
	cfg := webhookTestConfig(t)
	for _, tc := range []struct {
		login, requester, submitter string
		err                         bool
	}{
		{"ailisp", "alice", "ci-bot", false},
		{"AiLisp", "alice", "ci-bot", false},
		{"stranger", "ci-bot", "", false},
		{"", "ci-bot", "", false},
		{"octo-viewer", "", "", true},
	} {
		t.Run(tc.login, func(t *testing.T) {
			req, sub, err := gitHubRequester(cfg, cfg.GitHub, tc.login)
			if (err != nil) != tc.err {
				t.Fatalf("got error %v; want error %v", err, tc.err)
			}
			gotSub := ""
			if sub != nil {
				gotSub = string(sub.ID)
			}
			if string(req.ID) != tc.requester || gotSub != tc.submitter {
				t.Errorf("got requester %q, submitter %q; want %q, %q", req.ID, gotSub, tc.requester, tc.submitter)
			}
		})
	}
}

// TestGitHubStart: the start records the delivery, commit, branch and
// actor; the key carries the delivery; paths and the base go to the worker
// only where the workspace has paths.
func TestGitHubStart(t *testing.T) {
	cfg := webhookTestConfig(t)
	ch, _, err := parseGitHubEvent("pull_request", fixture(t, "pull_request.closed.merged.json"))
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := cfg.User("alice")
	bot, _ := cfg.User("ci-bot")
	net, _ := cfg.Workspace("net")
	req := gitHubStart(net, ch, "884a8280", alice.Identity, &bot.Identity)
	o := req.Origin
	if o.Trigger != "github" || o.Repository != "ailisp/gcbapp-buildconfig-example" || o.Ref != "master" || o.Commit != ch.Commit || o.Delivery != "884a8280" || o.Actor != "ailisp" {
		t.Errorf("got origin %+v", o)
	}
	if req.IdempotencyKey != "github:884a8280" || req.RequestedBy.ID != "alice" || req.SubmittedBy.ID != "ci-bot" {
		t.Errorf("got key %q, requester %q, submitter %v", req.IdempotencyKey, req.RequestedBy.ID, req.SubmittedBy)
	}
	if !slices.Equal(req.Paths, []string{"infra/network/**"}) || req.ChangedSince != "8357af6fef17bd180014e419f049944cb491238f" {
		t.Errorf("got paths %q since %q; want the workspace's paths since the base", req.Paths, req.ChangedSince)
	}
	if !strings.Contains(req.Message, "#3") || !strings.Contains(req.Message, "ailisp") {
		t.Errorf("message %q does not say which pull request and who", req.Message)
	}
	iam, _ := cfg.Workspace("iam")
	if req := gitHubStart(iam, ch, "884a8280", bot.Identity, nil); req.Paths != nil || req.ChangedSince != "" {
		t.Errorf("no paths: got paths %q since %q; want neither", req.Paths, req.ChangedSince)
	}
}
