package config

import (
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// This file holds how a workspace plans and applies (a terraform block, an
// apply command, or neither: gate only), when its approved runs may apply
// (freeze windows, one at a time, approvals' time to live), and what may
// start its runs besides the API (a signed webhook, GitHub).

// DefaultTerraformTimeout bounds one plan or one apply of a terraform
// workspace when its block does not say.
const DefaultTerraformTimeout = time.Hour

// Terraform makes Gatehouse plan and apply a workspace itself.
type Terraform struct {
	// Binary is "tofu", "terraform" or a path; looked up on the worker's
	// PATH when it plans. Default "tofu".
	Binary string
	// Dir is the working directory: absolute once Load resolved it
	// against the config file's directory. "" when Git is set.
	Dir string
	// Git, instead of Dir, checks out a repository for every run.
	Git *Git
	// Vars are passed as -var name=value to plan.
	Vars map[string]string
	// EnvFrom names the worker's variables plan and apply are given.
	EnvFrom []string
	// ReplanBeforeApply plans again just before applying; a plan that
	// changed sends the run back to approval.
	ReplanBeforeApply bool
	// Timeout bounds one plan and one apply.
	Timeout time.Duration
}

// Git is a repository a terraform workspace is checked out from.
type Git struct {
	URL string
	// Ref is what a run checks out when it names none. Default "main".
	Ref string
	// Path is the working directory inside the checkout ("" for its root).
	Path string
}

// Hooks lets a signed webhook start the workspace's runs.
type Hooks struct {
	// Secret verifies the X-Gatehouse-Signature of each delivery.
	Secret string
}

// WorkspaceGitHub maps GitHub deliveries to the workspace.
type WorkspaceGitHub struct {
	Repository string   // "org/repo"
	Branch     string   // default "main"
	Paths      []string // globs of changed paths that concern it; empty: any
}

// GitHub is how GitHub's webhook deliveries are verified and attributed.
type GitHub struct {
	WebhookSecret  string
	AutomationUser approval.UserID
	// Users maps GitHub logins to Gatehouse users.
	Users map[string]approval.UserID
}

var (
	varNamePattern    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
	repositoryPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	// taskQueuePattern is narrower than what Temporal takes, so a queue
	// name is also safe in flags, env lists and metrics labels.
	taskQueuePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$`)
)

// deployment validates what decides a workspace's mode and when and how
// its runs are started and applied, and fills them into w.
func (v *validator) deployment(p string, rw rawWorkspace, w *Workspace, baseDir string) {
	switch {
	case rw.Terraform != nil && rw.Apply != nil:
		v.add(p, "terraform and apply: give one (terraform: Gatehouse plans and applies; apply: your command applies a submitted plan)")
	case rw.Terraform != nil:
		w.Terraform = v.terraform(p+".terraform", *rw.Terraform, baseDir)
		w.Mode = approval.ModeTerraform
	case rw.Apply != nil:
		w.Mode = approval.ModeCommand
	default:
		w.Mode = approval.ModeGate
	}
	w.Supersede = rw.Supersede == nil || *rw.Supersede
	if rw.TaskQueue != "" {
		if taskQueuePattern.MatchString(rw.TaskQueue) {
			w.TaskQueue = rw.TaskQueue
		} else {
			v.add(p+".task_queue", "%q is not a task queue name: letters, digits, '.', '_' and '-', at most 200, starting with a letter or digit", rw.TaskQueue)
		}
	}
	if rw.ApprovalTTL != "" {
		if d, ok := v.duration(p+".approval_ttl", rw.ApprovalTTL); ok {
			w.ApprovalTTL = d
		}
	}
	for j, rf := range rw.Freeze {
		fp := indexPath(p+".freeze", j)
		f := approval.FreezeWindow{Cron: rf.Cron, Reason: rf.Reason}
		if rf.Cron == "" {
			v.add(fp+".cron", "required: when the window opens, e.g. \"0 18 * * FRI\"")
		}
		if rf.Duration == "" {
			v.add(fp+".duration", "required: how long the window lasts, e.g. 62h")
		} else if d, ok := v.duration(fp+".duration", rf.Duration); ok {
			f.Duration = d
		}
		if rf.Cron != "" && f.Duration > 0 {
			if err := approval.CheckFreeze(f); err != nil {
				v.add(fp+".cron", "%v", err)
			}
		}
		w.Freeze = append(w.Freeze, f)
	}
	if rw.Hooks != nil {
		secret, _ := v.secret(p+".hooks", "secret", rw.Hooks.Secret, rw.Hooks.SecretEnv)
		w.Hooks = &Hooks{Secret: secret}
		if rw.Terraform == nil {
			v.add(p+".hooks", "needs a terraform block: a hook names a ref, and Gatehouse plans it")
		}
	}
	if rw.GitHub != nil {
		w.GitHub = v.workspaceGitHub(p+".github", *rw.GitHub)
		if rw.Terraform == nil || rw.Terraform.Git == nil {
			v.add(p+".github", "needs terraform.git: Gatehouse checks out and plans what was pushed or merged")
		}
	}
}

func (v *validator) terraform(p string, rt rawTerraform, baseDir string) *Terraform {
	t := &Terraform{Binary: rt.Binary, Vars: rt.Vars, ReplanBeforeApply: rt.ReplanBeforeApply, Timeout: DefaultTerraformTimeout}
	if t.Binary == "" {
		t.Binary = "tofu"
	}
	switch {
	case rt.Dir != "" && rt.Git != nil:
		v.add(p, "dir and git: give one (dir: a directory on the worker; git: a checkout per run)")
	case rt.Git != nil:
		t.Git = v.git(p+".git", *rt.Git)
	default:
		t.Dir = rt.Dir
		if t.Dir == "" {
			t.Dir = "."
		}
		if baseDir != "" && !filepath.IsAbs(t.Dir) {
			t.Dir = filepath.Join(baseDir, t.Dir)
		}
	}
	names := make([]string, 0, len(rt.Vars))
	for name := range rt.Vars {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !varNamePattern.MatchString(name) {
			v.add(p+".vars."+name, "%q is not a variable name (want letters, digits, _ and -)", name)
		}
	}
	if len(t.Vars) == 0 {
		t.Vars = nil
	}
	t.EnvFrom = v.envFrom(p+".env_from", rt.EnvFrom)
	if rt.Timeout != "" {
		if d, ok := v.duration(p+".timeout", rt.Timeout); ok {
			t.Timeout = d
		}
	}
	return t
}

func (v *validator) git(p string, rg rawGit) *Git {
	g := &Git{URL: rg.URL, Ref: rg.Ref, Path: rg.Path}
	if g.Ref == "" {
		g.Ref = "main"
	}
	if g.URL == "" {
		v.add(p+".url", "required: the repository to check out (https://…, ssh://…, git@host:org/repo or file:///…)")
	} else if u, err := url.Parse(g.URL); err == nil && u.Scheme != "" && !slices.Contains([]string{"https", "http", "ssh", "git", "file"}, u.Scheme) {
		v.add(p+".url", "%q: unsupported scheme %q (want https, ssh, git or file)", g.URL, u.Scheme)
	}
	if strings.HasPrefix(g.Ref, "-") {
		v.add(p+".ref", "%q is not a ref", g.Ref)
	}
	if g.Path != "" {
		clean := filepath.Clean(g.Path)
		if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			v.add(p+".path", "%q must be a path inside the checkout", g.Path)
		}
		g.Path = clean
		if g.Path == "." {
			g.Path = ""
		}
	}
	return g
}

func (v *validator) workspaceGitHub(p string, rg rawWorkspaceGitHub) *WorkspaceGitHub {
	g := &WorkspaceGitHub{Repository: rg.Repository, Branch: rg.Branch, Paths: rg.Paths}
	if g.Branch == "" {
		g.Branch = "main"
	}
	if !repositoryPattern.MatchString(g.Repository) {
		v.add(p+".repository", "%q is not a GitHub repository (want org/repo)", g.Repository)
	}
	v.uniqueStrings(p+".paths", g.Paths, "path")
	if len(g.Paths) == 0 {
		g.Paths = nil
	}
	return g
}

// gitHub validates the top-level github block.
func (v *validator) gitHub(rg *rawGitHub, users []User) *GitHub {
	if rg == nil {
		return nil
	}
	const p = "github"
	g := &GitHub{Users: map[string]approval.UserID{}}
	g.WebhookSecret, _ = v.secret(p, "webhook_secret", rg.WebhookSecret, rg.WebhookSecretEnv)
	known := func(id string) (User, bool) {
		i := slices.IndexFunc(users, func(u User) bool { return string(u.ID) == id })
		if i < 0 {
			return User{}, false
		}
		return users[i], true
	}
	switch u, ok := known(rg.AutomationUser); {
	case rg.AutomationUser == "":
		v.add(p+".automation_user", "required: the automation user that submits runs GitHub starts")
	case !ok:
		v.add(p+".automation_user", "unknown user %q", rg.AutomationUser)
	case !u.Automation:
		v.add(p+".automation_user", "user %q is not an automation user (automation: true)", rg.AutomationUser)
	default:
		g.AutomationUser = u.ID
	}
	logins := make([]string, 0, len(rg.Users))
	for login := range rg.Users {
		logins = append(logins, login)
	}
	slices.Sort(logins)
	for _, login := range logins {
		id := rg.Users[login]
		if _, ok := known(id); !ok {
			v.add(p+".users."+login, "unknown user %q", id)
			continue
		}
		g.Users[login] = approval.UserID(id)
	}
	return g
}

// secret reads a secret given as a value (development only) or, better,
// as the name of the environment variable holding it: exactly one. Messages
// never quote the secret, only its variable's name.
// key is the value's key ("secret"); the variable's is key+"_env".
func (v *validator) secret(p, key, value, env string) (string, bool) {
	switch {
	case value != "" && env != "":
		v.add(p, "only one of %s and %s_env may be given", key, key)
	case value != "":
		return value, true
	case env == "":
		v.add(p, "required: %s_env, the environment variable holding the secret (or, in development only, %s)", key, key)
	case !envNamePattern.MatchString(env):
		v.add(p+"."+key+"_env", "%q is not an environment variable name (want letters, digits and _)", env)
	default:
		s := v.getenv(env)
		if s == "" {
			v.add(p+"."+key+"_env", "environment variable %s is not set (or is empty)", env)
			return "", false
		}
		return s, true
	}
	return "", false
}
