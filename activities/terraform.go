package activities

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/plan"
)

// A terraform workspace is planned and applied by Gatehouse itself: Plan
// runs init, plan -out and show -json; TerraformExecutor later runs apply
// of exactly the stored binary plan. Both run the workspace's binary and
// git with a controlled environment (tfEnv) in a private scratch directory
// under Activities.Work.

const (
	// errorTailLines and errorTailBytes bound the output a failed plan's
	// Error carries into workflow history; the whole log is an artifact.
	errorTailLines = 40
	errorTailBytes = 4 << 10
	// staleTailBytes is how much of an apply's output is searched for
	// Terraform's stale-plan error, which it prints last.
	staleTailBytes = 64 << 10
	// stalePlanMessage is how Terraform and OpenTofu refuse a saved plan
	// whose state changed after planning; they apply nothing then.
	stalePlanMessage = "Saved plan is stale"
)

var (
	commitPattern = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	// safeNamePattern is a run id that can name a directory as it is.
	safeNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
)

// Plan plans a terraform workspace for a run: it checks out (or uses) the
// working directory, runs init, plan -out and show -json, stores the binary
// plan and its JSON, and evaluates the workspace's rules and steps on the
// JSON. The outcome is PlanNoChanges, PlanPlanned or PlanFailed; the
// output of every command, secrets redacted, is stored as the plan log.
// Errors are the worker's own trouble (a directory it cannot create, a
// store that fails), worth a retry; a workspace this worker does not plan
// is a non-retryable ErrWorkspaceUnknown.
func (a *Activities) Plan(ctx context.Context, in PlanInput) (PlanOutcome, error) {
	ws, ok := a.Config.Workspace(in.Workspace)
	if !ok || ws.Terraform == nil {
		return PlanOutcome{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("workspace %q is not a terraform workspace on this worker", in.Workspace), ErrWorkspaceUnknown, nil)
	}
	started := time.Now()
	tf := *ws.Terraform
	w := workRoot(a.Work)
	if err := w.prepare(); err != nil {
		return PlanOutcome{}, err
	}
	scratch, cleanup, err := w.scratch("plan", in.RunID, "round-"+strconv.Itoa(max(in.Round, 1)))
	if err != nil {
		return PlanOutcome{}, err
	}
	defer cleanup()
	log := newTailBuffer(logLimit)
	red := logRedactor(ws, os.LookupEnv)

	stop := heartbeat(ctx, heartbeatEvery)
	out, err := a.plan(ctx, tf, ws, in, w, scratch, log)
	stop()
	if ctx.Err() != nil {
		// Cancelled: nobody waits for this outcome.
		return PlanOutcome{}, fmt.Errorf("plan of run %s: %w", in.RunID, context.Cause(ctx))
	}
	var f *failure
	if err != nil && !errors.As(err, &f) {
		return PlanOutcome{}, err
	}
	data, _ := red.artifact(log)
	if out.Origin.PlanLogSHA256, err = a.Plans.Put(data); err != nil {
		return PlanOutcome{}, fmt.Errorf("store plan log: %w", err)
	}
	if f != nil {
		cause := string(red.redact([]byte(f.Error())))
		if t := tail(data, errorTailLines, errorTailBytes); t != "" {
			cause += "\n" + t
		}
		out = PlanOutcome{Result: PlanFailed, Origin: out.Origin, Error: cause}
	}
	a.Logger.Info("plan finished",
		zap.String("run_id", in.RunID), zap.String("workspace", in.Workspace), zap.Int("round", in.Round),
		zap.String("result", out.Result), zap.String("commit", out.Origin.Commit), zap.String("binary", out.Origin.Binary),
		zap.String("plan_sha256", out.Plan.SHA256), zap.String("plan_file_sha256", out.Origin.PlanFileSHA256),
		zap.String("log_sha256", out.Origin.PlanLogSHA256), zap.Duration("took", time.Since(started)))
	return out, nil
}

// plan runs the plan's commands and stores its results. A *failure is the
// plan's own (it becomes PlanFailed); the outcome carries the origin known
// so far in every case.
func (a *Activities) plan(ctx context.Context, tf config.Terraform, ws config.Workspace, in PlanInput, w workRoot, scratch string, log io.Writer) (PlanOutcome, error) {
	// A directory workspace keeps the ref it was asked for, which
	// workingDir refuses: it has nothing to check out.
	out := PlanOutcome{Origin: approval.Origin{Ref: in.Ref}}
	if tf.Git != nil {
		out.Origin.Ref = cmp.Or(in.Ref, tf.Git.Ref)
	}
	if tf.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, tf.Timeout)
		defer cancel()
	}
	s, err := newSession(tf, w, scratch, log, 0)
	if err != nil {
		return out, err
	}
	dir, commit, err := s.workingDir(ctx, tf, scratch, out.Origin.Ref, in.Commit)
	out.Origin.Commit = commit
	if err != nil {
		return out, err
	}
	if out.Origin.Binary, err = s.version(ctx, dir); err != nil {
		return out, err
	}
	if err := s.run(ctx, dir, nil, s.binary, "init", "-input=false", "-no-color"); err != nil {
		return out, err
	}
	planFile := filepath.Join(scratch, "tfplan")
	changes, err := s.plan(ctx, dir, planFile, tf.Vars)
	if err != nil || !changes {
		out.Result = PlanNoChanges
		return out, err
	}
	var shown bytes.Buffer
	if err := s.run(ctx, dir, &shown, s.binary, "show", "-json", planFile); err != nil {
		return out, err
	}
	fmt.Fprintf(log, "[gatehouse: show -json printed %d bytes, stored as the run's plan]\n", shown.Len())
	parsed, err := plan.Parse(shown.Bytes())
	if err != nil {
		// Fail closed: a plan Gatehouse cannot read fully is not asked about.
		return out, failf("the plan cannot be read: %v", err)
	}
	if err := a.storePlan(&out, planFile, shown.Bytes(), parsed); err != nil {
		return out, err
	}
	out.Result = PlanPlanned
	out.Plan = parsed.PlanSummary
	out.Reasons = approval.Evaluate(ws.Workspace, parsed, nil, in.RequestedBy, a.Config.Directory())
	return out, nil
}

// storePlan stores the binary plan and its JSON, content-addressed, and
// records the binary's hash; the JSON's is the summary's.
func (a *Activities) storePlan(out *PlanOutcome, planFile string, shown []byte, parsed approval.Plan) error {
	binary, err := os.ReadFile(planFile)
	if err != nil {
		return fmt.Errorf("read binary plan: %w", err)
	}
	if out.Origin.PlanFileSHA256, err = a.Plans.Put(binary); err != nil {
		return fmt.Errorf("store binary plan: %w", err)
	}
	sha, err := a.Plans.Put(shown)
	if err != nil {
		return fmt.Errorf("store plan JSON: %w", err)
	}
	if sha != parsed.SHA256 {
		return fmt.Errorf("stored plan JSON as %s; its summary says %s", sha, parsed.SHA256)
	}
	return nil
}

// TerraformExecutor applies a terraform workspace's approved binary plan:
// it materializes the working directory (the directory, or a fresh checkout
// of exactly the planned commit), runs init and `apply <planfile>`, with the
// controlled environment the plan had.
type TerraformExecutor struct {
	// Work is the work root (Activities.Work).
	Work string
	// Grace is how long a cancelled command has between SIGINT and
	// SIGKILL. DefaultGrace when 0.
	Grace time.Duration
}

// Execute applies job.PlanFile. A stale plan (the state changed since it
// was made) is reported as StalePlan: Terraform applied nothing, and the
// run can go back to approval with a new plan.
func (e TerraformExecutor) Execute(ctx context.Context, job ApplyJob) approval.ApplyResult {
	tf := *job.Terraform
	if tf.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, tf.Timeout)
		defer cancel()
	}
	w := workRoot(e.Work)
	if err := w.prepare(); err != nil {
		return notApplied(nil, err)
	}
	scratch, cleanup, err := w.scratch("apply", job.RunID, job.PlanFileSHA256)
	if err != nil {
		return notApplied(nil, err)
	}
	defer cleanup()
	stale := newTailBuffer(staleTailBytes)
	s, err := newSession(tf, w, scratch, io.MultiWriter(job.Output, stale), e.Grace)
	if err != nil {
		return notApplied(nil, err)
	}
	args := []string{s.binary, "apply", "-input=false", "-no-color", job.PlanFile}
	command := append(slices.Clone(args[:len(args)-1]), filepath.Base(job.PlanFile))
	dir, _, err := s.workingDir(ctx, tf, scratch, "", job.Commit)
	if err != nil {
		return notApplied(command, err)
	}
	if err := s.run(ctx, dir, nil, s.binary, "init", "-input=false", "-no-color"); err != nil {
		return notApplied(command, fmt.Errorf("before apply: %w", err))
	}
	res := approval.ApplyResult{Command: command, Executed: true}
	var exitErr *exec.ExitError
	switch err := s.raw(ctx, dir, nil, args...); {
	case err == nil:
	case errors.Is(err, errNotStarted):
		res.Executed, res.ExitCode = false, -1
		res.Error = commandFailure(ctx, args, err).Error()
	case errors.As(err, &exitErr) && isStale(stale):
		res.ExitCode = exitCode(exitErr)
		res.StalePlan = true
		res.Error = "the saved plan is stale: the state changed after it was planned; nothing was applied"
	default:
		res.ExitCode = -1
		if exitErr != nil {
			res.ExitCode = exitCode(exitErr)
		}
		res.Error = commandFailure(ctx, args, err).Error()
	}
	return res
}

// notApplied is the result of an apply that failed before Terraform's
// apply started: nothing was applied.
func notApplied(command []string, err error) approval.ApplyResult {
	return approval.ApplyResult{Command: command, ExitCode: -1, Error: "not applied: " + err.Error()}
}

func isStale(out *tailBuffer) bool {
	data, _ := out.Artifact()
	return bytes.Contains(data, []byte(stalePlanMessage))
}

// workRoot is Activities.Work:
//
//	home/            HOME of every command: none of the worker's dotfiles
//	plugin-cache/    TF_PLUGIN_CACHE_DIR, shared: providers download once
//	cli.tfrc         TF_CLI_CONFIG_FILE, empty: no stray CLI config is read
//	plan/<run>/round-<n>/, apply/<run>/<plan-file-sha256>/
//	                 one plan's or apply's checkout, TF_DATA_DIR and plan
//	                 file, removed when it ends
type workRoot string

func (w workRoot) home() string        { return filepath.Join(string(w), "home") }
func (w workRoot) pluginCache() string { return filepath.Join(string(w), "plugin-cache") }
func (w workRoot) cliConfig() string   { return filepath.Join(string(w), "cli.tfrc") }

// prepare creates the shared parts and empties the CLI config: whatever
// was written there since, the commands read no configuration but their
// environment's.
func (w workRoot) prepare() error {
	if w == "" {
		return errors.New("no work directory configured on this worker (Activities.Work)")
	}
	for _, dir := range []string{w.home(), w.pluginCache()} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("prepare work directory: %w", err)
		}
	}
	tmp, err := os.CreateTemp(string(w), ".cli-*.tfrc")
	if err != nil {
		return fmt.Errorf("prepare CLI config: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("prepare CLI config: %w", err)
	}
	// Renamed into place, so a command starting meanwhile reads the old
	// empty file or the new one, never a half-written one.
	if err := os.Rename(tmp.Name(), w.cliConfig()); err != nil {
		return fmt.Errorf("prepare CLI config: %w", err)
	}
	return nil
}

// scratch returns a fresh directory for one plan or apply of a run, with
// the function that removes it. A retried attempt starts from nothing.
func (w workRoot) scratch(kind, runID, name string) (string, func(), error) {
	parent := filepath.Join(string(w), kind, pathName(runID))
	dir := filepath.Join(parent, pathName(name))
	if err := os.RemoveAll(dir); err != nil {
		return "", nil, fmt.Errorf("clear %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("create %s: %w", dir, err)
	}
	return dir, func() {
		os.RemoveAll(dir)
		os.Remove(parent) // only once the run's last one is gone
	}, nil
}

// pathName is s when it can name a directory as it is, else its hash: run
// ids come from workflow input and must not climb out of the work root.
func pathName(s string) string {
	if safeNamePattern.MatchString(s) && s != "." && s != ".." {
		return s
	}
	return "h-" + plan.Hash([]byte(s))[:32]
}

// tfEnv is the whole environment of a plan's or apply's commands: PATH,
// Gatehouse's own settings, and the names the workspace lists in env_from.
// Nothing else of the worker's environment — tokens, signing keys, a stray
// TF_CLI_CONFIG_FILE — reaches Terraform or git. A name listed in env_from
// comes last and so wins (exec keeps the last of duplicates): the workspace
// asked for it by name.
func tfEnv(w workRoot, dataDir string, envFrom []string, lookup func(string) (string, bool)) []string {
	var env []string
	if v, ok := lookup("PATH"); ok {
		env = append(env, "PATH="+v)
	}
	env = append(env,
		"HOME="+w.home(),
		"TF_IN_AUTOMATION=1",
		"TF_INPUT=0",
		"TF_PLUGIN_CACHE_DIR="+w.pluginCache(),
		"TF_CLI_CONFIG_FILE="+w.cliConfig(),
		// Each plan and apply initializes its own data dir, so two of them
		// on one directory workspace never share .terraform.
		"TF_DATA_DIR="+dataDir,
		// A git that needs credentials fails instead of waiting for a
		// person at a terminal nobody watches.
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
	)
	for _, name := range envFrom {
		if strings.HasPrefix(name, "GATEHOUSE_") {
			continue // refused by config validation; kept out for code-built configs
		}
		if v, ok := lookup(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// failure is a plan or apply that failed for reasons of the workspace — a
// command exited non-zero, the checkout failed, the plan cannot be read —
// not the worker's own trouble. Its message is a one-line cause.
type failure struct{ msg string }

func (f *failure) Error() string { return f.msg }

func failf(format string, args ...any) error { return &failure{msg: fmt.Sprintf(format, args...)} }

// session runs the commands of one plan or apply: the workspace's binary
// and git, in one environment, all output to one log.
type session struct {
	binary, git string
	env         []string
	log         io.Writer
	grace       time.Duration
}

func newSession(tf config.Terraform, w workRoot, scratch string, log io.Writer, grace time.Duration) (session, error) {
	s := session{env: tfEnv(w, filepath.Join(scratch, "tf-data"), tf.EnvFrom, os.LookupEnv), log: log, grace: grace}
	var err error
	if s.binary, err = exec.LookPath(tf.Binary); err != nil {
		return s, failf("terraform binary %q: %v", tf.Binary, err)
	}
	if tf.Git != nil {
		if s.git, err = exec.LookPath("git"); err != nil {
			return s, failf("git: %v", err)
		}
	}
	return s, nil
}

// raw runs one command with the session's environment, its stdout to
// stdout (the log when nil), its stderr to the log, after a line saying
// what runs. The error is process.run's.
func (s session) raw(ctx context.Context, dir string, stdout io.Writer, args ...string) error {
	fmt.Fprintf(s.log, "$ %s\n", shown(args))
	if stdout == nil {
		stdout = s.log
	}
	return process{Args: args, Dir: dir, Env: s.env, Stdout: stdout, Stderr: s.log, Grace: s.grace}.run(ctx)
}

// run is raw with a failure that says which command failed and how.
func (s session) run(ctx context.Context, dir string, stdout io.Writer, args ...string) error {
	return commandFailure(ctx, args, s.raw(ctx, dir, stdout, args...))
}

func commandFailure(ctx context.Context, args []string, err error) error {
	if err == nil {
		return nil
	}
	name := filepath.Base(args[0])
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		name += " " + args[1]
	}
	var exitErr *exec.ExitError
	var msg string
	switch {
	case errors.As(err, &exitErr):
		msg = fmt.Sprintf("%s exited with code %d", name, exitCode(exitErr))
	case errors.Is(err, errNotStarted):
		msg = fmt.Sprintf("%s did not start: %v", name, errors.Unwrap(err))
	default:
		msg = fmt.Sprintf("%s: %v", name, err)
	}
	if ctx.Err() != nil {
		msg += fmt.Sprintf(" (interrupted: %v)", context.Cause(ctx))
	}
	return &failure{msg: msg}
}

// shown is how a command appears in the log: the binary's base name, the
// values of -var left out (a variable may be sensitive) and any password in
// a URL hidden.
func shown(args []string) string {
	out := make([]string, len(args))
	for i, arg := range args {
		switch {
		case i == 0:
			arg = filepath.Base(arg)
		case args[i-1] == "-var":
			name, _, _ := strings.Cut(arg, "=")
			arg = name + "=…"
		case strings.Contains(arg, "://"):
			if u, err := url.Parse(arg); err == nil {
				arg = u.Redacted()
			}
		}
		out[i] = arg
	}
	return strings.Join(out, " ")
}

// version returns the binary's name and version, e.g. "tofu 1.12.6".
func (s session) version(ctx context.Context, dir string) (string, error) {
	var out bytes.Buffer
	if err := s.run(ctx, dir, &out, s.binary, "version", "-json"); err != nil {
		return "", err
	}
	var v struct {
		Version string `json:"terraform_version"`
	}
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.Version == "" {
		return "", failf("%s version -json printed no terraform_version", filepath.Base(s.binary))
	}
	return binaryName(s.binary) + " " + v.Version, nil
}

// binaryName is "tofu" or "terraform" as the binary's name says (both print
// "terraform_version"), else the name itself.
func binaryName(path string) string {
	base := filepath.Base(path)
	switch {
	case strings.Contains(base, "tofu"):
		return "tofu"
	case strings.Contains(base, "terraform"):
		return "terraform"
	}
	return base
}

// plan runs plan -detailed-exitcode with the workspace's variables, in
// sorted order so the command reads the same every time. It reports
// whether the plan has changes: exit code 2.
func (s session) plan(ctx context.Context, dir, planFile string, vars map[string]string) (bool, error) {
	args := []string{s.binary, "plan", "-input=false", "-no-color", "-detailed-exitcode", "-out=" + planFile}
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		args = append(args, "-var", name+"="+vars[name])
	}
	err := s.raw(ctx, dir, nil, args...)
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() == 2 {
		return true, nil
	}
	return false, commandFailure(ctx, args, err)
}

// workingDir is where the workspace's commands run: its directory, or a
// checkout in scratch of commit (or else of ref) with the block's path in
// it. It returns the commit checked out ("" for a directory).
func (s session) workingDir(ctx context.Context, tf config.Terraform, scratch, ref, commit string) (string, string, error) {
	if tf.Git == nil {
		if ref != "" || commit != "" {
			return "", "", failf("the workspace plans the directory %s, which has no ref or commit to check out", tf.Dir)
		}
		return tf.Dir, "", nil
	}
	dest := filepath.Join(scratch, "checkout")
	got, err := s.checkout(ctx, tf.Git.URL, dest, ref, commit)
	if err != nil {
		return "", got, err
	}
	dir, err := inside(dest, tf.Git.Path)
	return dir, got, err
}

// checkout clones url into dest and checks out commit, or else what ref
// names, and returns the commit checked out. Refs and commits are checked
// first and passed after `--end-of-options` or as hashes, so none is ever
// read as an option of git.
func (s session) checkout(ctx context.Context, repo, dest, ref, commit string) (string, error) {
	switch {
	case commit != "" && !commitPattern.MatchString(commit):
		return "", failf("%q is not a commit hash", commit)
	case commit == "":
		if err := checkRef(ref); err != nil {
			return "", err
		}
	}
	if err := s.run(ctx, filepath.Dir(dest), nil, s.git, "clone", "--quiet", "--no-checkout", "--", repo, dest); err != nil {
		return "", err
	}
	target := commit
	if target == "" {
		var err error
		if target, err = s.resolve(ctx, dest, ref); err != nil {
			return "", err
		}
	}
	if err := s.run(ctx, dest, nil, s.git, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", target, "--"); err != nil {
		return "", err
	}
	var head bytes.Buffer
	if err := s.run(ctx, dest, &head, s.git, "rev-parse", "HEAD"); err != nil {
		return "", err
	}
	got := strings.TrimSpace(head.String())
	if !strings.HasPrefix(got, target) {
		return got, failf("checked out %s; want %s", got, target)
	}
	return got, nil
}

// resolve returns the commit ref names in the clone at dir: the remote's
// branch of that name, else a tag, else whatever git makes of it (a hash).
func (s session) resolve(ctx context.Context, dir, ref string) (string, error) {
	for _, candidate := range []string{"refs/remotes/origin/" + ref, "refs/tags/" + ref, ref} {
		var out bytes.Buffer
		err := s.raw(ctx, dir, &out, s.git, "rev-parse", "--verify", "--quiet", "--end-of-options", candidate+"^{commit}")
		if err == nil {
			return strings.TrimSpace(out.String()), nil
		}
		if ctx.Err() != nil {
			return "", commandFailure(ctx, []string{s.git, "rev-parse"}, err)
		}
	}
	return "", failf("ref %q is neither a branch, a tag nor a commit of the repository", ref)
}

// checkRef refuses what cannot be a ref before git sees it: an option, a
// range, a revision expression.
func checkRef(ref string) error {
	if ref == "" || strings.HasPrefix(ref, "-") || strings.Contains(ref, "..") ||
		strings.ContainsAny(ref, " ~^:?*[\\") || strings.ContainsFunc(ref, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return failf("%q is not a ref", ref)
	}
	return nil
}

// inside is path within the checkout at root, which it must stay in even
// through symlinks, and must be a directory.
func inside(root, path string) (string, error) {
	dir := filepath.Join(root, path)
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("checkout: %w", err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", failf("path %q is not in the checkout", path)
	}
	if rel, err := filepath.Rel(realRoot, real); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", failf("path %q leads out of the checkout", path)
	}
	if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
		return "", failf("path %q is not a directory of the checkout", path)
	}
	return dir, nil
}

// secretRedactor blanks secrets out of logs (the shortest kept is
// minSensitiveLen, as for policies): the values of a terraform
// workspace's env_from variables and a password in its git URL.
type secretRedactor struct {
	secrets [][]byte // longest first, so a secret containing another goes whole
}

// logRedactor is the secretRedactor for a workspace's logs: none for an apply
// command's (its env_from is the command's business, as before).
func logRedactor(ws config.Workspace, lookup func(string) (string, bool)) secretRedactor {
	if ws.Terraform == nil {
		return secretRedactor{}
	}
	var values []string
	for _, name := range ws.Terraform.EnvFrom {
		if v, ok := lookup(name); ok {
			values = append(values, v)
		}
	}
	if g := ws.Terraform.Git; g != nil {
		if u, err := url.Parse(g.URL); err == nil && u.User != nil {
			if p, ok := u.User.Password(); ok {
				values = append(values, p)
			}
		}
	}
	return newSecretRedactor(values)
}

// newSecretRedactor redacts each value and, for a multi-line value such as a
// key, each of its lines: a log cut or wrapped mid-secret still leaks none.
func newSecretRedactor(values []string) secretRedactor {
	var r secretRedactor
	add := func(s string) {
		if len(s) >= minSensitiveLen && !slices.ContainsFunc(r.secrets, func(b []byte) bool { return string(b) == s }) {
			r.secrets = append(r.secrets, []byte(s))
		}
	}
	for _, v := range values {
		add(v)
		for line := range strings.Lines(v) {
			add(strings.TrimSpace(line))
		}
	}
	slices.SortFunc(r.secrets, func(a, b []byte) int { return len(b) - len(a) })
	return r
}

func (r secretRedactor) redact(data []byte) []byte {
	for _, s := range r.secrets {
		data = bytes.ReplaceAll(data, s, []byte("[redacted]"))
	}
	return data
}

// artifact is the log's artifact, redacted. When the log was cut, its first
// kept line may begin inside a secret, whose end no longer matches: that
// line goes too.
func (r secretRedactor) artifact(log *tailBuffer) ([]byte, bool) {
	data, truncated := log.Artifact()
	if truncated && len(r.secrets) > 0 {
		header, rest, _ := bytes.Cut(data, []byte("\n"))
		if _, after, ok := bytes.Cut(rest, []byte("\n")); ok {
			rest = after
		}
		data = slices.Concat(header, []byte("\n"), rest)
	}
	return r.redact(data), truncated
}

// tail is the last lines of data, at most maxBytes of them.
func tail(data []byte, lines, maxBytes int) string {
	data = bytes.TrimRight(data, "\n")
	start := len(data)
	for range lines {
		i := bytes.LastIndexByte(data[:start], '\n')
		if i < 0 {
			start = 0
			break
		}
		start = i
	}
	if start < len(data) && data[start] == '\n' {
		start++
	}
	start = max(start, len(data)-maxBytes)
	return string(data[start:])
}
