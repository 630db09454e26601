// Package gittest makes git repositories for tests: a bare repository in a
// temporary directory (what a workspace's terraform.git.url points at, as
// file://…) and a work tree cloned from it, where Commit writes files,
// commits and pushes.
package gittest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Repo is a bare repository and a clone of it.
type Repo struct {
	t *testing.T
	// Bare is the bare repository's path; Work the clone's.
	Bare, Work string
	// Branch is the branch Commit pushes to.
	Branch string
}

// New makes a repository whose default branch is branch. Without git the
// test is skipped, except in CI (CI=true), where that is a failure.
func New(t *testing.T, branch string) *Repo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("git is not installed")
		}
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	r := &Repo{t: t, Bare: filepath.Join(dir, "origin.git"), Work: filepath.Join(dir, "work"), Branch: branch}
	r.Git(dir, "init", "--quiet", "--bare", "--initial-branch="+branch, r.Bare)
	r.Git(dir, "clone", "--quiet", r.Bare, r.Work)
	return r
}

// URL is the bare repository as a file:// URL.
func (r *Repo) URL() string { return "file://" + r.Bare }

// Git runs git in dir with a fixed author and no user or system config,
// failing the test on an error, and returns its trimmed output.
func (r *Repo) Git(dir string, args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Commit writes files (slash path → content; "" deletes the file) in the
// work tree, commits them, pushes to Branch and returns the commit's id.
func (r *Repo) Commit(files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		if content == "" {
			r.Git(r.Work, "rm", "--quiet", name)
			continue
		}
		p := filepath.Join(r.Work, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
		r.Git(r.Work, "add", name)
	}
	r.Git(r.Work, "commit", "--quiet", "-m", "change")
	r.Git(r.Work, "push", "--quiet", "origin", "HEAD:"+r.Branch)
	return r.Git(r.Work, "rev-parse", "HEAD")
}
