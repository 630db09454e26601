package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// copyExample copies examples/gatehouse.yaml (users with plain dev tokens,
// comments on many lines) and its policy files into a temporary directory
// and returns the copy's path.
func copyExample(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile("../examples/gatehouse.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(path, data, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dir, "policies"), os.DirFS("../examples/policies")); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNewToken(t *testing.T) {
	tok, sum, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^gh_[A-Za-z0-9_-]{43}$`).MatchString(tok) {
		t.Errorf("token %q: want gh_ and 43 base64url characters (32 bytes)", tok)
	}
	if sum != TokenDigest(tok) || !sha256Pattern.MatchString(sum) {
		t.Errorf("digest %q: want the SHA-256 of the token", sum)
	}
	other, _, err := NewToken()
	if err != nil || other == tok {
		t.Errorf("two tokens: got %q twice (%v); want different ones", tok, err)
	}
}

func TestSetUserTokenKeepsTheRestOfTheFile(t *testing.T) {
	path := copyExample(t)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	tok, sum, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	// bob has a plain dev token: only rotate replaces it.
	if err := SetUserToken(path, "bob", sum, time.Time{}, false); !errors.Is(err, ErrUserHasToken) {
		t.Fatalf("token new for a user with a token: got %v; want ErrUserHasToken", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatal("a refused token new changed the file")
	}
	exp := time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := SetUserToken(path, "bob", sum, exp, true); err != nil {
		t.Fatalf("rotate bob: %v", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Every comment of the original is still there, in the same order.
	comments := func(b []byte) []string {
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if _, c, ok := strings.Cut(l, "#"); ok {
				out = append(out, strings.TrimSpace(c))
			}
		}
		return out
	}
	if got, want := comments(after), comments(before); !slices.Equal(got, want) {
		t.Errorf("comments after rewrite:\n%q\nwant\n%q", got, want)
	}
	if strings.Contains(string(after), "dev-bob") {
		t.Error("bob's plain token is still in the file")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode after rewrite: got %v, %v; want 0640 kept", fi.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".gatehouse.yaml.*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	c, err := Load(path)
	if err != nil {
		t.Fatalf("load after rewrite: %v", err)
	}
	if c.Version == old.Version {
		t.Error("config version did not change with bob's token")
	}
	for i, u := range c.Users {
		o := old.Users[i]
		if u.ID == "bob" {
			if u.Token != "" || u.TokenSHA256 != sum || !u.TokenExpires.Equal(exp) {
				t.Errorf("bob after rotate: got token %q, sha %s, expires %s; want sha %s expiring %s", u.Token, u.TokenSHA256, u.TokenExpires, sum, exp)
			}
			continue
		}
		if u.ID != o.ID || u.TokenSHA256 != o.TokenSHA256 || u.Email != o.Email || !slices.Equal(u.Groups, o.Groups) {
			t.Errorf("users[%d] changed: got %+v; want %+v", i, u, o)
		}
	}
	if len(c.Workspaces) != len(old.Workspaces) {
		t.Errorf("workspaces: got %d; want %d", len(c.Workspaces), len(old.Workspaces))
	}
	if u, err := c.AuthenticateAt(tok, exp.Add(-time.Hour)); err != nil || u.ID != "bob" {
		t.Errorf("the new token before its expiry: got %s, %v; want bob", u.ID, err)
	}
	if _, ok := c.Authenticate("dev-bob"); ok {
		t.Error("bob's old token still logs in")
	}

	// Rotating again without an expiry removes token_expires.
	_, sum2, _ := NewToken()
	if err := SetUserToken(path, "bob", sum2, time.Time{}, true); err != nil {
		t.Fatal(err)
	}
	if c, err = Load(path); err != nil {
		t.Fatal(err)
	}
	if u, _ := c.User("bob"); u.TokenSHA256 != sum2 || !u.TokenExpires.IsZero() {
		t.Errorf("bob after a second rotate: sha %s expires %s; want %s, no expiry", u.TokenSHA256, u.TokenExpires, sum2)
	}
}

func TestSetUserTokenRefuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.yaml")
	src := "# users\nusers:\n  - id: alice # the one\n    roles: [approver]\n  - id: bob\n    token_sha256: " + strings.Repeat("ab", 32) + " # rotated yearly\nworkspaces: []\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, sum, _ := NewToken()
	for name, call := range map[string]func() error{
		"unknown user":      func() error { return SetUserToken(path, "mallory", sum, time.Time{}, false) },
		"new over a digest": func() error { return SetUserToken(path, "bob", sum, time.Time{}, false) },
		"rotate none":       func() error { return SetUserToken(path, "alice", sum, time.Time{}, true) },
		"bad digest":        func() error { return SetUserToken(path, "alice", "nothex", time.Time{}, false) },
	} {
		if err := call(); err == nil {
			t.Errorf("%s: got nil; want an error", name)
		}
	}
	if got, _ := os.ReadFile(path); string(got) != src {
		t.Errorf("refusals changed the file:\n%s", got)
	}
	if err := SetUserToken(path, "alice", sum, time.Time{}, false); err != nil {
		t.Fatalf("token new for alice: %v", err)
	}
	got, _ := os.ReadFile(path)
	want := "# users\nusers:\n  - id: alice # the one\n    token_sha256: " + sum + "\n    roles: [approver]\n  - id: bob\n    token_sha256: " + strings.Repeat("ab", 32) + " # rotated yearly\nworkspaces: []\n"
	if string(got) != want {
		t.Errorf("file after token new:\n%s\nwant\n%s", got, want)
	}
	// Rotating keeps the comment of the token's line; an expiry goes on
	// the next line.
	_, sum2, _ := NewToken()
	if err := SetUserToken(path, "bob", sum2, time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), true); err != nil {
		t.Fatalf("rotate bob: %v", err)
	}
	got, _ = os.ReadFile(path)
	want = strings.Replace(want, strings.Repeat("ab", 32)+" # rotated yearly\n", sum2+" # rotated yearly\n    token_expires: \"2030-01-02T03:04:05Z\"\n", 1)
	if string(got) != want {
		t.Errorf("file after rotate:\n%s\nwant\n%s", got, want)
	}
}

// TestSetUserTokenFlowStyleEntry: a user written as a flow mapping cannot
// be edited line by line; the file is then re-encoded from its node tree,
// which keeps comments and order but not alignment.
func TestSetUserTokenFlowStyleEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.yaml")
	src := "users:\n  - {id: alice, roles: [approver], token: dev-alice} # dev only\nworkspaces: []\n"
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	_, sum, _ := NewToken()
	if err := SetUserToken(path, "alice", sum, time.Time{}, true); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "users:\n  - {id: alice, roles: [approver], token_sha256: " + sum + "} # dev only\nworkspaces: []\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestTokenExpiry(t *testing.T) {
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := mustParse(t, `
users:
  - id: alice
    email: alice@example.com
    roles: [approver]
    token: dev-alice
    token_expires: 2030-01-01T00:00:00Z
  - id: bob
    email: bob@example.com
    roles: [approver]
    token_sha256: `+TokenDigest("bob-secret")+`
    token_expires: "2030-01-20T00:00:00Z"
  - id: carol
    email: carol@example.com
    roles: [approver]
    token_sha256: `+TokenDigest("carol-secret")+`
workspaces:
  - name: ws
    steps:
      - name: review
        stage: pre_apply
        approvers: {users: [alice, bob, carol]}
        min_approvals: 1
`)
	for _, tt := range []struct {
		token string
		now   time.Time
		want  error
	}{
		{"dev-alice", exp.Add(-time.Second), nil},
		{"dev-alice", exp, ErrTokenExpired},
		{"dev-alice", exp.Add(time.Hour), ErrTokenExpired},
		{"bob-secret", exp.Add(time.Hour), nil},
		{"carol-secret", exp.AddDate(50, 0, 0), nil},
		{"wrong", exp.Add(-time.Hour), ErrTokenInvalid},
		{"", exp.Add(-time.Hour), ErrTokenInvalid},
	} {
		if _, err := c.AuthenticateAt(tt.token, tt.now); !errors.Is(err, tt.want) && !(err == nil && tt.want == nil) {
			t.Errorf("AuthenticateAt(%q, %s): got %v; want %v", tt.token, tt.now, err, tt.want)
		}
	}

	// Two weeks before alice's expiry: alice warned (and for her plain
	// token), bob not yet.
	checkProblems(t, c.TokenWarnings(exp.Add(-13*24*time.Hour)), []Problem{
		{Path: "users[0].token", Message: "a plain token is readable by anyone who can read this file: for development only; use token_sha256 (gatehouse token new --config FILE --user alice)"},
		{Path: "users[0].token_expires", Message: "expires 2030-01-01T00:00:00Z, in 312h0m0s: gatehouse token rotate --config FILE --user alice"},
	})
	checkProblems(t, c.TokenWarnings(exp.AddDate(0, 0, 6)), []Problem{
		{Path: "users[0].token", Message: "a plain token is readable by anyone who can read this file: for development only; use token_sha256 (gatehouse token new --config FILE --user alice)"},
		{Path: "users[0].token_expires", Message: "expired 2030-01-01T00:00:00Z: the token is refused; gatehouse token rotate --config FILE --user alice"},
		{Path: "users[1].token_expires", Message: "expires 2030-01-20T00:00:00Z, in 312h0m0s: gatehouse token rotate --config FILE --user bob"},
	})
}

func TestTokenExpiresValidation(t *testing.T) {
	_, err := Parse([]byte(`
users:
  - id: alice
    email: alice@example.com
    roles: [approver]
    token_expires: 2030-01-01T00:00:00Z
  - id: bob
    email: bob@example.com
    roles: [approver]
    token: dev-bob
    token_expires: next tuesday
workspaces:
  - name: ws
    steps:
      - name: review
        stage: pre_apply
        approvers: {users: [alice, bob]}
        min_approvals: 1
`))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("got %v; want a ValidationError", err)
	}
	checkProblems(t, verr.Problems, []Problem{
		{Path: "users[0].token_expires", Message: "given without a token or token_sha256"},
		{Path: "users[1].token_expires", Message: "must be an RFC 3339 time, like 2027-03-01T00:00:00Z"},
	})
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 12, 2, 19, 0, 0, 500, time.UTC)
	for in, want := range map[string]time.Time{
		"90d":                  time.Date(2027, 3, 2, 19, 0, 0, 0, time.UTC),
		"720h":                 time.Date(2027, 1, 1, 19, 0, 0, 0, time.UTC),
		"2027-06-01T00:00:00Z": time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC),
	} {
		if got, err := ParseExpiry(in, now); err != nil || !got.Equal(want) {
			t.Errorf("ParseExpiry(%q): got %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"0d", "-3d", "xd", "soon", "-1h", "2020-01-01T00:00:00Z", ""} {
		if got, err := ParseExpiry(in, now); err == nil {
			t.Errorf("ParseExpiry(%q): got %s; want an error", in, got)
		}
	}
}
