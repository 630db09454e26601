package activities

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/internal/gittest"
)

func activitiesFor(t *testing.T, url string) *Activities {
	t.Helper()
	cfg, err := config.Parse([]byte(`
users:
  - {id: alice, email: alice@example.com, token: t-alice}
workspaces:
  - name: net
    terraform: {git: {url: "` + url + `"}}
  - name: local
    terraform: {dir: .}
`))
	if err != nil {
		t.Fatal(err)
	}
	return &Activities{Config: cfg}
}

// TestChangedPathsDiffsTheCheckout: two commits touching different trees of
// a local bare repository, read over file://, are told apart by the globs;
// `**` crosses directories and `*` does not.
func TestChangedPathsDiffsTheCheckout(t *testing.T) {
	repo := gittest.New(t, "main")
	base := repo.Commit(map[string]string{"infra/network/main.tf": "a", "infra/iam/main.tf": "a", "README.md": "a"})
	network := repo.Commit(map[string]string{"infra/network/modules/vpc/main.tf": "b", "infra/network/main.tf": "b"})
	docs := repo.Commit(map[string]string{"README.md": "c", "infra/iam/main.tf": ""})
	a := activitiesFor(t, repo.URL())

	for _, tc := range []struct {
		name          string
		since, commit string
		paths         []string
		matched       bool
		changed       []string
		matchedPaths  []string
	}{
		{"network change, network globs", base, network, []string{"infra/network/**"}, true,
			[]string{"infra/network/main.tf", "infra/network/modules/vpc/main.tf"},
			[]string{"infra/network/main.tf", "infra/network/modules/vpc/main.tf"}},
		{"star stays in its directory", base, network, []string{"infra/network/*.tf"}, true,
			[]string{"infra/network/main.tf", "infra/network/modules/vpc/main.tf"},
			[]string{"infra/network/main.tf"}},
		{"docs change, network globs", network, docs, []string{"infra/network/**"}, false,
			[]string{"README.md", "infra/iam/main.tf"}, []string{}},
		{"a deleted file counts", network, docs, []string{"infra/iam/**"}, true,
			[]string{"README.md", "infra/iam/main.tf"}, []string{"infra/iam/main.tf"}},
		{"no globs: any change", network, docs, nil, true,
			[]string{"README.md", "infra/iam/main.tf"}, []string{"README.md", "infra/iam/main.tf"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.ChangedPaths(context.Background(), ChangedPathsInput{Workspace: "net", Since: tc.since, Commit: tc.commit, Paths: tc.paths})
			if err != nil {
				t.Fatal(err)
			}
			if got.Matched != tc.matched || !slices.Equal(got.Changed, tc.changed) || !slices.Equal(got.MatchedPaths, tc.matchedPaths) || got.ChangedCount != len(tc.changed) {
				t.Errorf("got %+v; want matched %v, changed %q, matched paths %q", got, tc.matched, tc.changed, tc.matchedPaths)
			}
		})
	}
}

// TestChangedPathsBoundsItsLists: a commit touching more files than
// MaxChangedPaths is counted in full and listed in part.
func TestChangedPathsBoundsItsLists(t *testing.T) {
	repo := gittest.New(t, "main")
	base := repo.Commit(map[string]string{"keep": "a"})
	files := map[string]string{}
	for i := range MaxChangedPaths + 20 {
		files[filepath.ToSlash(filepath.Join("infra", "gen", strings.Repeat("f", 1+i%5)+string(rune('a'+i%26))+string(rune('a'+i/26))+".tf"))] = "x"
	}
	head := repo.Commit(files)
	got, err := activitiesFor(t, repo.URL()).ChangedPaths(context.Background(), ChangedPathsInput{Workspace: "net", Since: base, Commit: head, Paths: []string{"infra/**"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.ChangedCount != len(files) || len(got.Changed) != MaxChangedPaths || len(got.MatchedPaths) != MaxChangedPaths || !got.Matched {
		t.Errorf("got count %d, %d changed, %d matched; want %d, %d, %d", got.ChangedCount, len(got.Changed), len(got.MatchedPaths), len(files), MaxChangedPaths, MaxChangedPaths)
	}
}

// TestChangedPathsWithoutABase: a new branch (no since) and a since the
// repository does not have (a force push) plan rather than skip, and say so.
func TestChangedPathsWithoutABase(t *testing.T) {
	repo := gittest.New(t, "main")
	head := repo.Commit(map[string]string{"README.md": "a"})
	a := activitiesFor(t, repo.URL())
	for name, since := range map[string]string{"new branch": "", "unknown base": strings.Repeat("ab", 20)} {
		t.Run(name, func(t *testing.T) {
			got, err := a.ChangedPaths(context.Background(), ChangedPathsInput{Workspace: "net", Since: since, Commit: head, Paths: []string{"infra/**"}})
			if err != nil {
				t.Fatal(err)
			}
			if !got.Matched || got.Note == "" {
				t.Errorf("got %+v; want matched with a note", got)
			}
		})
	}
}

// TestChangedPathsRefusesBadInput: what cannot work is a non-retryable
// error, and no object name reaches git as an option.
func TestChangedPathsRefusesBadInput(t *testing.T) {
	a := activitiesFor(t, "file:///nonexistent")
	for _, tc := range []struct {
		name string
		in   ChangedPathsInput
		want string
	}{
		{"unknown workspace", ChangedPathsInput{Workspace: "nope", Commit: "abcd"}, "not in the worker's config"},
		{"no git", ChangedPathsInput{Workspace: "local", Commit: "abcd"}, "no terraform.git"},
		{"option as commit", ChangedPathsInput{Workspace: "net", Commit: "--output=/tmp/x", Since: "abcd"}, "not a git object name"},
		{"option as since", ChangedPathsInput{Workspace: "net", Commit: "abcd", Since: "-p"}, "not a git object name"},
		{"bad glob", ChangedPathsInput{Workspace: "net", Commit: "abcd", Since: "abcd", Paths: []string{"infra/[network"}}, "path glob"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.ChangedPaths(context.Background(), tc.in)
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) || !appErr.NonRetryable() || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want a non-retryable error containing %q", err, tc.want)
			}
		})
	}
}

// TestGitEnvKeepsTheWorkersEnvironmentOut: git sees PATH and HOME and
// nothing else of the worker's, and cannot prompt.
func TestGitEnvKeepsTheWorkersEnvironmentOut(t *testing.T) {
	worker := map[string]string{"PATH": "/bin", "HOME": "/home/w", "GIT_ASKPASS": "/bin/steal", "GATEHOUSE_SIGNING_KEYS": "k", "GIT_DIR": "/x"}
	env := gitEnv(func(name string) (string, bool) { v, ok := worker[name]; return v, ok })
	for _, want := range []string{"PATH=/bin", "HOME=/home/w", "GIT_TERMINAL_PROMPT=0"} {
		if !slices.Contains(env, want) {
			t.Errorf("env %q lacks %s", env, want)
		}
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "GIT_ASKPASS=") || strings.HasPrefix(kv, "GATEHOUSE_") || strings.HasPrefix(kv, "GIT_DIR=") {
			t.Errorf("env %q passes %s on", env, kv)
		}
	}
}
