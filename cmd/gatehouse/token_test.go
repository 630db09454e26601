package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/gatehouse-dev/gatehouse/cmd/gatehouse/cli"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

// run executes the gatehouse command tree in process, as main does.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, msg := cli.Exit(root.ExecuteContext(ctx))
	if msg != "" {
		errOut.WriteString(msg + "\n")
	}
	return code, out.String(), errOut.String()
}

// field is the value of "name: value" in the token verbs' output.
func field(t *testing.T, out, name string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, name+": "); ok {
			return v
		}
	}
	t.Fatalf("output has no %s:\n%s", name, out)
	return ""
}

// status is the gateway's answer to GET /api/v1/workspaces with token, for
// the config at path as a gateway started now would load it.
func status(t *testing.T, path, token string) (int, string) {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	srv := httptest.NewServer(gateway.New(gateway.Options{Config: cfg, Logger: zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))}))
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/workspaces", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestTokenNewAndRotate: token new writes a user's digest into a config,
// the gateway then lets the printed token in; a second new is refused;
// rotate replaces the token (the old one is then refused); an expired token
// is answered 401 "token expired"; config validate warns of an expiry near.
func TestTokenNewAndRotate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	src := `# two people, no tokens yet
users:
  - id: alice
    email: alice@example.com
    roles: [approver]   # reviews
  - id: bob
    email: bob@example.com
    roles: [approver]
workspaces:
  - name: ws
    steps:
      - name: review
        stage: pre_apply
        approvers: {users: [alice, bob]}
        min_approvals: 1
`
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := run(t, "token", "new", "--config", path, "--user", "mallory"); code == 0 {
		t.Fatalf("token new for an unknown user: exit 0 (%s%s); want an error", out, errOut)
	}
	code, out, errOut := run(t, "token", "new", "--config", path, "--user", "alice")
	if code != 0 {
		t.Fatalf("token new: exit %d: %s", code, errOut)
	}
	first := field(t, out, "token")
	if !strings.HasPrefix(first, "gh_") || field(t, out, "token_sha256") != config.TokenDigest(first) {
		t.Errorf("token new printed %q; want a gh_ token and its digest", out)
	}
	written, _ := os.ReadFile(path)
	if strings.Contains(string(written), first) || !strings.Contains(string(written), "roles: [approver]   # reviews") {
		t.Errorf("config after token new:\n%s\nwant the digest only, the rest as written", written)
	}
	if got, body := status(t, path, first); got != http.StatusOK {
		t.Fatalf("the new token: got %d %s; want 200", got, body)
	}
	if code, _, _ := run(t, "token", "new", "--config", path, "--user", "alice"); code == 0 {
		t.Error("a second token new for alice: exit 0; want a refusal (rotate replaces)")
	}

	code, out, errOut = run(t, "token", "rotate", "--config", path, "--user", "alice", "--expires", "3d")
	if code != 0 {
		t.Fatalf("token rotate: exit %d: %s", code, errOut)
	}
	second := field(t, out, "token")
	if exp, err := time.Parse(time.RFC3339, field(t, out, "token_expires")); err != nil || exp.Sub(time.Now()) > 73*time.Hour || exp.Sub(time.Now()) < 71*time.Hour {
		t.Errorf("token_expires %v (%v); want in 3 days", exp, err)
	}
	if got, _ := status(t, path, first); got != http.StatusUnauthorized {
		t.Errorf("the rotated-out token: got %d; want 401", got)
	}
	if got, body := status(t, path, second); got != http.StatusOK {
		t.Errorf("the rotated-in token: got %d %s; want 200", got, body)
	}
	code, out, _ = run(t, "config", "validate", path)
	if code != 0 || !strings.Contains(out, "warning: users[0].token_expires: expires ") {
		t.Errorf("config validate: exit %d\n%s\nwant a warning about alice's expiry", code, out)
	}

	// Expired: the file says so (as it would once the date passes).
	data, _ := os.ReadFile(path)
	exp := field(t, string(data), "    token_expires")
	past := strings.Replace(string(data), exp, `"2020-01-01T00:00:00Z"`, 1)
	if err := os.WriteFile(path, []byte(past), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, body := status(t, path, second); got != http.StatusUnauthorized || !strings.Contains(body, "token expired") {
		t.Errorf("an expired token: got %d %s; want 401 token expired", got, body)
	}
	if got, body := status(t, path, "gh_not-a-token"); got != http.StatusUnauthorized || !strings.Contains(body, "invalid token") {
		t.Errorf("an unknown token: got %d %s; want 401 invalid token", got, body)
	}
	if code, _, _ := run(t, "token", "rotate", "--user", "alice"); code == 0 {
		t.Error("rotate without --config: exit 0; want an error")
	}
}
