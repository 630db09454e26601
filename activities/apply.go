package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
)

// ApplyJob is one approved plan to apply: the run, the workspace's apply
// settings and a private copy of the plan whose bytes match the approved
// hash.
type ApplyJob struct {
	RunID      string
	Workspace  string
	PlanSHA256 string
	// PlanFile is the private copy of what the apply applies: the binary
	// plan (PlanFileSHA256) when the run has one — always for a terraform
	// workspace — else, for an apply command, the JSON plan. PlanJSON is
	// the private copy of the JSON plan for an apply command.
	PlanFile string
	PlanJSON string
	Apply    config.Apply
	// Terraform is set for a workspace Gatehouse plans and applies: the
	// executor applies PlanFile in the working directory it describes,
	// checked out at Commit when it comes from git.
	Terraform      *config.Terraform
	PlanFileSHA256 string
	Commit         string
	// Output receives everything the apply prints; the activity keeps its
	// tail as the run's log artifact.
	Output io.Writer
}

// Executor applies an approved plan. A failure to apply is a result
// (ExitCode, Error), not an error: the run records it as a failed apply.
// CommandExecutor runs a workspace's apply command; TerraformExecutor runs
// `tofu apply` (or terraform's) on the stored binary plan.
type Executor interface {
	Execute(ctx context.Context, job ApplyJob) approval.ApplyResult
}

// ApplyInput names the run and the exact plan to apply.
type ApplyInput struct {
	RunID      string `json:"run_id"`
	Workspace  string `json:"workspace"`
	PlanSHA256 string `json:"plan_sha256"`
	// PlanFileSHA256 is the binary plan a terraform workspace applies:
	// exactly that file, read back from the store and checked.
	PlanFileSHA256 string `json:"plan_file_sha256,omitempty"`
	// Commit is what a git workspace checks out to apply: the commit
	// that was planned.
	Commit string `json:"commit,omitempty"`
}

// Error types of the apply activity, the contract with the run workflow.
// The first two come before the claim: nothing ran. ApplyOutcomeUnknown
// means an earlier attempt claimed this apply, so it may have run.
const (
	ErrWorkspaceUnknown    = "WorkspaceUnknown"
	ErrPlanUnavailable     = "PlanUnavailable"
	ErrClaimUnavailable    = "ClaimUnavailable"
	ErrApplyOutcomeUnknown = "ApplyOutcomeUnknown"
)

// logLimit bounds the apply's log artifact: the tail, where errors are.
const logLimit = 1 << 20

// heartbeatEvery keeps the activity's heartbeat well inside the workflow's
// heartbeat timeout, so a live apply is never mistaken for a dead worker.
const heartbeatEvery = 10 * time.Second

// Apply runs the workspace's apply command — or, for a terraform workspace,
// `apply` of the approved binary plan — at most once per run and plan
// whatever Temporal does. The plan's bytes are read back from the store,
// checked against the approved hash and handed over in a private file, so
// what runs is exactly what was approved.
// Before the command starts, the apply is claimed on disk (ClaimStore); a
// second attempt finds the claim and returns ApplyOutcomeUnknown without
// running anything. A workspace with no command records that nothing was
// executed. A command that exits non-zero is a result, not an error: the
// workflow records it as a failed apply.
func (a *Activities) Apply(ctx context.Context, in ApplyInput) (approval.ApplyResult, error) {
	res, err := a.apply(ctx, in)
	if err == nil {
		a.Metrics.Apply(res)
	}
	return res, err
}

func (a *Activities) apply(ctx context.Context, in ApplyInput) (approval.ApplyResult, error) {
	started := time.Now().UTC()
	ws, ok := a.Config.Workspace(in.Workspace)
	if !ok {
		return approval.ApplyResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("workspace %q is not configured on this worker", in.Workspace), ErrWorkspaceUnknown, nil)
	}
	if ws.Apply == nil && ws.Terraform == nil {
		now := time.Now().UTC()
		return approval.ApplyResult{Executed: false, StartedAt: started, FinishedAt: now}, nil
	}
	job, cleanup, err := a.applyJob(in, ws)
	if err != nil {
		return approval.ApplyResult{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrPlanUnavailable, nil)
	}
	defer cleanup()
	if err := a.claim(ctx, in, started); err != nil {
		return approval.ApplyResult{}, err
	}

	log := newTailBuffer(logLimit)
	job.Output = log
	res := a.execute(ctx, a.executorFor(ws), job)
	res.StartedAt = started
	res.FinishedAt = time.Now().UTC()
	a.storeLog(in, &res, log, logRedactor(ws, os.LookupEnv))
	a.finishClaim(in, res)
	a.Logger.Info("apply finished",
		zap.String("run_id", in.RunID), zap.String("workspace", in.Workspace),
		zap.String("plan_sha256", in.PlanSHA256), zap.Int("exit_code", res.ExitCode), zap.String("error", res.Error),
		zap.String("log_sha256", res.LogSHA256), zap.Int64("log_bytes", res.LogBytes))
	return res, nil
}

// applyJob gathers what the apply needs before anything is claimed, so a
// missing or altered plan ends the run with nothing run: for an apply
// command a private copy of the JSON plan; for a terraform workspace one of
// the binary plan, after checking that the approved JSON is still there
// too, and the commit a git workspace checks out.
func (a *Activities) applyJob(in ApplyInput, ws config.Workspace) (ApplyJob, func(), error) {
	job := ApplyJob{
		RunID: in.RunID, Workspace: in.Workspace, PlanSHA256: in.PlanSHA256,
		PlanFileSHA256: in.PlanFileSHA256, Commit: in.Commit,
	}
	if ws.Terraform == nil {
		job.Apply = *ws.Apply
		path, cleanup, err := a.privatePlan(in.PlanSHA256, ".json")
		job.PlanFile, job.PlanJSON = path, path
		if err != nil || in.PlanFileSHA256 == "" {
			return job, cleanup, err
		}
		// A binary plan was submitted beside the JSON: the command gets
		// exactly that file to apply (terraform apply "$GATEHOUSE_PLAN_FILE").
		bin, cleanupBin, err := a.privatePlan(in.PlanFileSHA256, ".tfplan")
		if err != nil {
			cleanup()
			return job, nil, err
		}
		job.PlanFile = bin
		return job, func() { cleanup(); cleanupBin() }, nil
	}
	job.Terraform = ws.Terraform
	if in.PlanFileSHA256 == "" {
		return job, nil, errors.New("the run records no binary plan (plan -out) to apply")
	}
	if ws.Terraform.Git != nil && in.Commit == "" {
		return job, nil, errors.New("the run records no commit to check out for the apply")
	}
	if _, err := a.Plans.Get(in.PlanSHA256); err != nil {
		return job, nil, fmt.Errorf("load approved plan: %w", err)
	}
	path, cleanup, err := a.privatePlan(in.PlanFileSHA256, ".tfplan")
	job.PlanFile = path
	return job, cleanup, err
}

// privatePlan writes the stored file with the given hash, checked against
// it, to a file only this apply uses (named after the hash, with ext), and
// returns it with the function that removes it.
func (a *Activities) privatePlan(sha, ext string) (string, func(), error) {
	data, err := a.Plans.Get(sha)
	if err != nil {
		return "", nil, fmt.Errorf("load approved plan: %w", err)
	}
	dir, err := os.MkdirTemp("", "gatehouse-apply-*")
	if err != nil {
		return "", nil, fmt.Errorf("private copy of the plan: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	path := filepath.Join(dir, sha+ext)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("private copy of the plan: %w", err)
	}
	return path, cleanup, nil
}

// claim records this attempt as the one that applies the run's plan, or
// says which attempt did. Without a claim store there is no apply: a gate
// that could apply twice is not one.
func (a *Activities) claim(ctx context.Context, in ApplyInput, now time.Time) error {
	if a.Claims == nil {
		return temporal.NewNonRetryableApplicationError("no claim store configured on this worker: refusing to apply", ErrClaimUnavailable, nil)
	}
	info := activity.GetInfo(ctx)
	host, _ := os.Hostname()
	err := a.Claims.Claim(Claim{
		RunID: in.RunID, PlanSHA256: in.PlanSHA256,
		WorkflowRunID: info.WorkflowExecution.RunID, ActivityID: info.ActivityID, Attempt: info.Attempt,
		Worker: workerIdentity(info.TaskQueue, host), Host: host, PID: os.Getpid(), ClaimedAt: now,
	})
	var claimed *ClaimedError
	switch {
	case errors.As(err, &claimed):
		a.Logger.Error("apply already claimed: not applying again",
			zap.String("run_id", in.RunID), zap.String("plan_sha256", in.PlanSHA256), zap.Error(err))
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrApplyOutcomeUnknown, nil, claimed.First)
	case err != nil:
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrClaimUnavailable, nil)
	}
	return nil
}

// workerIdentity is the identity Temporal records for this worker. The
// SDK's ActivityInfo does not carry it (v1.50), so it is built the way the
// SDK builds its default, which Gatehouse's workers use: pid@host@queue.
func workerIdentity(taskQueue, host string) string {
	return fmt.Sprintf("%d@%s@%s", os.Getpid(), host, taskQueue)
}

// executorFor is what applies the workspace: Terraform's own apply for a
// terraform workspace, else the configured executor, by default the
// workspace's apply command.
func (a *Activities) executorFor(ws config.Workspace) Executor {
	switch {
	case ws.Terraform != nil:
		return TerraformExecutor{Work: a.Work}
	case a.Executor != nil:
		return a.Executor
	default:
		return CommandExecutor{}
	}
}

// execute runs the job on the executor, heartbeating all the while: also
// while a stopping worker waits for it, so the server does not take a
// finishing apply for a dead one.
func (a *Activities) execute(ctx context.Context, executor Executor, job ApplyJob) approval.ApplyResult {
	stop := heartbeat(ctx, heartbeatEvery)
	defer stop()
	return executor.Execute(ctx, job)
}

// heartbeat records the activity's heartbeat every interval until the
// returned stop is called.
func heartbeat(ctx context.Context, every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// storeLog keeps what the command printed, secrets redacted, as an
// artifact in the content-addressed store and points the result at it. A
// step before the apply that printed something (a checkout, an init) has its
// log kept too. Nothing of the output enters workflow history. Failing to
// store it does not change what the apply did, so it is logged, not
// returned.
func (a *Activities) storeLog(in ApplyInput, res *approval.ApplyResult, log *tailBuffer, r secretRedactor) {
	if !res.Executed && log.Written() == 0 {
		return
	}
	data, truncated := r.artifact(log)
	sha, err := a.Plans.Put(data)
	if err != nil {
		a.Logger.Error("store apply log", zap.String("run_id", in.RunID), zap.Error(err))
		return
	}
	res.LogSHA256, res.LogBytes, res.LogTruncated = sha, int64(len(data)), truncated
}

// finishClaim records the outcome on the claim, so a later attempt's
// message can say how the first one ended. A failure leaves the claim
// without outcome, which still blocks a second apply.
func (a *Activities) finishClaim(in ApplyInput, res approval.ApplyResult) {
	err := a.Claims.Finish(in.RunID, in.PlanSHA256, ClaimOutcome{
		Executed: res.Executed, ExitCode: res.ExitCode, Error: res.Error,
		FinishedAt: res.FinishedAt, LogSHA256: res.LogSHA256,
	})
	if err != nil {
		a.Logger.Error("record apply outcome on its claim", zap.String("run_id", in.RunID), zap.Error(err))
	}
}

// tailBuffer keeps the last limit bytes written to it in a ring, so a
// chatty apply costs one copy per write, not one per kept byte.
type tailBuffer struct {
	mu    sync.Mutex
	ring  []byte
	start int // oldest byte once the ring is full
	limit int
	total int64
}

func newTailBuffer(limit int) *tailBuffer { return &tailBuffer{limit: limit} }

// Written is how many bytes were written, kept or not.
func (b *tailBuffer) Written() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	b.total += int64(n)
	if len(p) >= b.limit {
		b.ring = append(b.ring[:0], p[len(p)-b.limit:]...)
		b.start = 0
		return n, nil
	}
	if room := b.limit - len(b.ring); room > 0 {
		k := min(room, len(p))
		b.ring = append(b.ring, p[:k]...)
		p = p[k:]
	}
	for len(p) > 0 {
		k := copy(b.ring[b.start:], p)
		p = p[k:]
		b.start = (b.start + k) % b.limit
	}
	return n, nil
}

// Artifact returns the kept bytes in order, behind a line saying how much
// was cut when the output outgrew the limit.
func (b *tailBuffer) Artifact() ([]byte, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []byte
	truncated := b.total > int64(len(b.ring))
	if truncated {
		out = fmt.Appendf(nil, "[gatehouse: output truncated: the first %d of %d bytes were dropped; the last %d follow]\n",
			b.total-int64(len(b.ring)), b.total, len(b.ring))
	}
	out = append(out, b.ring[b.start:]...)
	out = append(out, b.ring[:b.start]...)
	return out, truncated
}

// applyEnv is the apply command's whole environment: a few variables every
// program expects, the names the workspace lists in env_from, and the run's
// own. Nothing else of the worker's environment — webhook secrets, signing
// keys, tokens — reaches the command. lookup is os.LookupEnv outside tests.
func applyEnv(job ApplyJob, lookup func(string) (string, bool)) []string {
	names := append([]string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"}, job.Apply.EnvFrom...)
	env := make([]string, 0, len(names)+4)
	for _, name := range names {
		// Config validation refuses these in env_from; this keeps the
		// run's variables the run's even for an Apply built in code.
		if strings.HasPrefix(name, "GATEHOUSE_") {
			continue
		}
		if v, ok := lookup(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return append(env,
		"GATEHOUSE_RUN_ID="+job.RunID,
		"GATEHOUSE_WORKSPACE="+job.Workspace,
		"GATEHOUSE_PLAN_SHA256="+job.PlanSHA256,
		"GATEHOUSE_PLAN_FILE="+job.PlanFile,
		"GATEHOUSE_PLAN_JSON="+job.PlanJSON,
	)
}

// DefaultGrace is how long a cancelled apply has between SIGINT and SIGKILL:
// long enough for Terraform to finish the resource operations it has in
// flight, write its state and release its lock.
const DefaultGrace = 2 * time.Minute

// CommandExecutor runs the workspace's apply command with the run id, the
// workspace, the plan hash and the plan file in its environment.
type CommandExecutor struct {
	// Grace is how long a cancelled command has between SIGINT and
	// SIGKILL. DefaultGrace when 0.
	Grace time.Duration
}

// Execute runs the command in a process group of its own and waits for it.
// If ctx ends (the workflow cancels the activity, or a stopping worker runs
// out of stop timeout) the group gets SIGINT — Terraform's graceful stop —
// and SIGKILL once the grace period is over.
func (e CommandExecutor) Execute(ctx context.Context, job ApplyJob) approval.ApplyResult {
	ap := job.Apply
	res := approval.ApplyResult{Command: ap.Command}
	err := process{
		Args: ap.Command, Dir: ap.Dir, Env: applyEnv(job, os.LookupEnv),
		Stdout: job.Output, Stderr: job.Output, Grace: e.Grace,
	}.run(ctx)
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		res.Executed = true
		res.ExitCode = exitCode(exitErr)
		res.Error = fmt.Sprintf("apply command failed: %v", err)
		if ctx.Err() != nil {
			res.Error += fmt.Sprintf(" (interrupted: %v)", context.Cause(ctx))
		}
	case errors.Is(err, errNotStarted):
		res.ExitCode = -1
		res.Error = err.Error()
	case err != nil:
		res.Executed = true
		res.ExitCode = -1
		res.Error = fmt.Sprintf("apply command: %v", err)
	default:
		res.Executed = true
	}
	return res
}

// exitCode is the code a command that failed exited with; -1 when a signal
// ended it, so a killed command never reads as a success.
func exitCode(err *exec.ExitError) int {
	if code := err.ExitCode(); code != 0 {
		return code
	}
	return -1
}

// process is one command Gatehouse runs on the worker — an apply command,
// or a step of a Terraform plan or apply — and how it is stopped.
type process struct {
	Args           []string
	Dir            string
	Env            []string
	Stdout, Stderr io.Writer
	// Grace is how long the command has between SIGINT and SIGKILL once
	// ctx ends. DefaultGrace when 0.
	Grace time.Duration
}

// run runs the command in a process group of its own and waits for it. If
// ctx ends the group gets SIGINT, and SIGKILL once the grace period is
// over. The error wraps errNotStarted when the command never ran, and is
// an *exec.ExitError when it exited non-zero or was killed.
func (p process) run(ctx context.Context) error {
	grace := p.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	cmd := exec.CommandContext(ctx, p.Args[0], p.Args[1:]...)
	cmd.Dir = p.Dir
	// Never nil: a nil Env would hand the command the worker's whole
	// environment.
	cmd.Env = append([]string{}, p.Env...)
	cmd.Stdout, cmd.Stderr = p.Stdout, p.Stderr
	cmd.SysProcAttr = applyProcAttr()
	var kill *time.Timer
	cmd.Cancel = func() error {
		pgid := cmd.Process.Pid                                                       // Setpgid: the group's id is the leader's pid
		kill = time.AfterFunc(grace, func() { syscall.Kill(-pgid, syscall.SIGKILL) }) //nolint:errcheck // gone already is fine
		return syscall.Kill(-pgid, syscall.SIGINT)
	}
	// A backstop after the group's SIGKILL: exec kills the leader and stops
	// waiting for output from descendants that left the group and still
	// hold the pipes.
	cmd.WaitDelay = grace + 5*time.Second

	err := startAndWait(cmd)
	if kill != nil {
		kill.Stop()
	}
	return err
}

// errNotStarted marks a command that never ran.
var errNotStarted = errors.New("start apply command")

// startAndWait starts cmd and waits for it on one OS thread. Pdeathsig is
// sent when the thread that forked the child exits, not when the process
// does (https://go.dev/issue/27505). Go keeps idle threads, but it ends a
// thread whose goroutine exits while locked to it — and any goroutine may be
// scheduled on the forking thread later. Holding the thread locked from fork
// to reap means no other goroutine runs on it, so the only way it ends while
// the apply runs is the worker's death. The cost is one thread per running
// apply, which is blocked waiting anyway.
func startAndWait(cmd *exec.Cmd) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: %w", errNotStarted, err)
	}
	return cmd.Wait()
}
