package activities

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/gobwas/glob"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
)

// MaxChangedPaths bounds the lists ChangedPaths returns: they go into
// workflow history, and a merge can touch thousands of files.
const MaxChangedPaths = 50

// gitWaitDelay is how long a finished or killed git's pipes may stay open.
const gitWaitDelay = 5 * time.Second

// ChangedPathsInput asks which files changed between two commits of a
// workspace's repository, and whether any is under its path globs.
type ChangedPathsInput struct {
	// Workspace names the workspace; its terraform.git.url comes from the
	// worker's own config, never from workflow input.
	Workspace string `json:"workspace"`
	// Since and Commit are the commits to compare (full or abbreviated
	// hex object names). Since "" (a new branch) cannot be compared.
	Since  string `json:"since,omitempty"`
	Commit string `json:"commit"`
	// Paths are globs over repository paths: `*` stays within a
	// directory, `**` crosses directories. None means any change counts.
	Paths []string `json:"paths,omitempty"`
}

// ChangedPathsResult is what the diff found, bounded for history.
type ChangedPathsResult struct {
	// Matched says whether the run should go on: a changed file matched a
	// glob, or there was nothing to compare with (see Note).
	Matched bool `json:"matched"`
	// Changed lists the first MaxChangedPaths changed files; ChangedCount
	// counts them all.
	Changed      []string `json:"changed"`
	ChangedCount int      `json:"changed_count"`
	// MatchedPaths lists the first MaxChangedPaths changed files that a
	// glob matched.
	MatchedPaths []string `json:"matched_paths"`
	// Note says why Matched is true without a diff.
	Note string `json:"note,omitempty"`
}

// objectName is a hex git object name: a full SHA-1 or SHA-256, or an
// abbreviation. Nothing else reaches git's command line, so no input can be
// read as an option.
var objectName = regexp.MustCompile(`^[0-9a-fA-F]{4,64}$`)

// ChangedPaths clones the workspace's repository without file contents
// (GitHub deliveries carry no file list), lists the files that changed
// between Since and Commit, and matches them against the globs.
func (a *Activities) ChangedPaths(ctx context.Context, in ChangedPathsInput) (ChangedPathsResult, error) {
	repoURL, err := a.gitURL(in.Workspace)
	if err != nil {
		return ChangedPathsResult{}, err
	}
	globs, err := compileGlobs(in.Paths)
	if err != nil {
		return ChangedPathsResult{}, err
	}
	if !objectName.MatchString(in.Commit) {
		return ChangedPathsResult{}, nonRetryable("commit %q is not a git object name", in.Commit)
	}
	if in.Since == "" {
		// A new branch: every file is new to it, and comparing with
		// anything else would be a guess. Planning is the safe answer.
		return ChangedPathsResult{Matched: true, Changed: []string{}, MatchedPaths: []string{}, Note: "no earlier commit to compare with (a new branch): planned without a diff"}, nil
	}
	if !objectName.MatchString(in.Since) {
		return ChangedPathsResult{}, nonRetryable("since %q is not a git object name", in.Since)
	}
	if activity.IsActivity(ctx) {
		stop := heartbeat(ctx, 10*time.Second)
		defer stop()
	}
	dir, err := os.MkdirTemp("", "gatehouse-diff-")
	if err != nil {
		return ChangedPathsResult{}, fmt.Errorf("changed paths: %w", err)
	}
	defer os.RemoveAll(dir)
	bare := filepath.Join(dir, "repo.git")
	// Trees are enough for --name-only: no blob is fetched.
	if _, err := runGit(ctx, dir, "clone", "--bare", "--filter=blob:none", "--no-tags", "--quiet", "--", repoURL, bare); err != nil {
		// git may echo the URL, and a URL may hold a password.
		return ChangedPathsResult{}, fmt.Errorf("clone %s: %s", redactURL(repoURL), strings.ReplaceAll(err.Error(), repoURL, redactURL(repoURL)))
	}
	if _, err := runGit(ctx, bare, "cat-file", "-e", in.Since+"^{commit}"); err != nil {
		// A force push can leave the old head nowhere: nothing to diff
		// against, so plan rather than skip a change.
		return ChangedPathsResult{Matched: true, Changed: []string{}, MatchedPaths: []string{}, Note: fmt.Sprintf("earlier commit %s is not in the repository (a force push?): planned without a diff", in.Since)}, nil
	}
	// --no-renames: a rename lists both paths (either may be under a glob),
	// and rename detection would fetch the blobs the clone left out.
	out, err := runGit(ctx, bare, "diff", "--name-only", "--no-renames", "-z", in.Since, in.Commit, "--")
	if err != nil {
		return ChangedPathsResult{}, fmt.Errorf("diff %s..%s: %w", in.Since, in.Commit, err)
	}
	return matchChanged(bytes.NewReader(out), globs)
}

// gitURL is the repository the worker's config gives the workspace.
func (a *Activities) gitURL(workspace string) (string, error) {
	ws, ok := a.Config.Workspace(workspace)
	if !ok {
		return "", nonRetryable("workspace %q is not in the worker's config", workspace)
	}
	if ws.Terraform == nil || ws.Terraform.Git == nil {
		return "", nonRetryable("workspace %q has no terraform.git repository", workspace)
	}
	return ws.Terraform.Git.URL, nil
}

// compileGlobs compiles path globs with "/" as the separator, so `*` stays
// within a directory and `**` crosses directories.
func compileGlobs(patterns []string) ([]*glob.Pattern, error) {
	globs := make([]*glob.Pattern, 0, len(patterns))
	for _, p := range patterns {
		g, err := glob.Compile(p, '/')
		if err != nil {
			return nil, nonRetryable("path glob %q: %v", p, err)
		}
		globs = append(globs, g)
	}
	return globs, nil
}

// matchChanged reads NUL-separated paths and keeps the bounded lists. No
// globs means every change counts.
func matchChanged(r io.Reader, globs []*glob.Pattern) (ChangedPathsResult, error) {
	res := ChangedPathsResult{Changed: []string{}, MatchedPaths: []string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	sc.Split(splitNUL)
	for sc.Scan() {
		p := sc.Text()
		if p == "" {
			continue
		}
		res.ChangedCount++
		if len(res.Changed) < MaxChangedPaths {
			res.Changed = append(res.Changed, p)
		}
		if !matchesAny(globs, p) {
			continue
		}
		res.Matched = true
		if len(res.MatchedPaths) < MaxChangedPaths {
			res.MatchedPaths = append(res.MatchedPaths, p)
		}
	}
	if err := sc.Err(); err != nil {
		return ChangedPathsResult{}, fmt.Errorf("read changed paths: %w", err)
	}
	return res, nil
}

func matchesAny(globs []*glob.Pattern, p string) bool {
	if len(globs) == 0 {
		return true
	}
	for _, g := range globs {
		if g.Match(p) {
			return true
		}
	}
	return false
}

// splitNUL is a bufio.SplitFunc for git's -z output.
func splitNUL(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// maxGitStderr bounds the part of git's error output an error carries.
const maxGitStderr = 2 << 10

// runGit runs git in dir with a controlled environment and returns its
// output; a failure carries the tail of what git printed. git holds nothing
// that needs a graceful stop: a cancelled ctx kills it.
func runGit(ctx context.Context, dir string, args ...string) ([]byte, error) {
	var stdout bytes.Buffer
	stderr := newTailBuffer(maxGitStderr)
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv(os.LookupEnv) // never nil: nil would pass the worker's whole environment
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	// ssh or a credential helper may outlive git holding the pipes.
	cmd.WaitDelay = gitWaitDelay
	if err := cmd.Run(); err != nil {
		tail, _ := stderr.Artifact()
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(string(tail)))
	}
	return stdout.Bytes(), nil
}

// gitEnv is git's whole environment: PATH and HOME from the worker (HOME
// holds the operator's git and ssh config), and switches that make git
// fail rather than wait for a person. Nothing else of the worker's
// environment — its secrets, a GIT_ASKPASS, a GIT_DIR — reaches git.
func gitEnv(lookup func(string) (string, bool)) []string {
	env := []string{
		"GIT_TERMINAL_PROMPT=0",
		"GCM_INTERACTIVE=never",
		"GIT_CONFIG_NOSYSTEM=1",
		"LC_ALL=C",
	}
	for _, name := range []string{"PATH", "HOME"} {
		if v, ok := lookup(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// redactURL drops the password a repository URL may carry, for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

func nonRetryable(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return temporal.NewNonRetryableApplicationError("changed paths: "+msg, "ChangedPathsInvalid", nil)
}
