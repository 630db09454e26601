package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/plan"
)

// ApplyJob is one approved plan to apply: the run, the workspace's apply
// settings and a private copy of the plan whose bytes match the approved
// hash.
type ApplyJob struct {
	RunID      string
	Workspace  string
	PlanSHA256 string
	PlanFile   string
	Apply      config.Apply
}

// Executor applies an approved plan. A failure to apply is a result
// (ExitCode, Error), not an error: the run records it as a failed apply.
// The command executor is the one there is today; an OpenTofu executor that
// runs `tofu apply` on a stored plan file fits the same seam.
type Executor interface {
	Execute(ctx context.Context, job ApplyJob) approval.ApplyResult
}

// ApplyInput names the run and the exact plan to apply.
type ApplyInput struct {
	RunID      string `json:"run_id"`
	Workspace  string `json:"workspace"`
	PlanSHA256 string `json:"plan_sha256"`
}

// outputLimit bounds how much of an apply's output is kept in the run state
// (and so in workflow history): the tail, where errors are.
const outputLimit = 8 << 10

// heartbeatEvery keeps the activity's heartbeat well inside the workflow's
// heartbeat timeout, so a live apply is never mistaken for a dead worker.
const heartbeatEvery = 10 * time.Second

// Apply runs the workspace's apply command for the approved plan. The plan's
// bytes are read back from the store, checked against the approved hash and
// handed to the command in a private file, so what runs is exactly what was
// approved. A workspace with no command records that nothing was executed.
// A command that exits non-zero is a result, not an error: the workflow
// records it as a failed apply.
func (a *Activities) Apply(ctx context.Context, in ApplyInput) (approval.ApplyResult, error) {
	started := time.Now().UTC()
	ws, ok := a.Config.Workspace(in.Workspace)
	if !ok {
		return approval.ApplyResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("workspace %q is not configured on this worker", in.Workspace), "WorkspaceUnknown", nil)
	}
	if ws.Apply == nil {
		return approval.ApplyResult{
			Executed:   false,
			Output:     "workspace has no apply command: nothing was executed",
			StartedAt:  started,
			FinishedAt: time.Now().UTC(),
		}, nil
	}
	data, err := a.Plans.Get(in.PlanSHA256)
	if err != nil {
		return approval.ApplyResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("load approved plan: %v", err), "PlanUnavailable", nil)
	}
	dir, err := os.MkdirTemp("", "gatehouse-apply-*")
	if err != nil {
		return approval.ApplyResult{}, fmt.Errorf("apply %s: %w", in.RunID, err)
	}
	defer os.RemoveAll(dir)
	planFile := filepath.Join(dir, in.PlanSHA256+".json")
	if err := os.WriteFile(planFile, data, 0o600); err != nil {
		return approval.ApplyResult{}, fmt.Errorf("apply %s: write plan: %w", in.RunID, err)
	}

	executor := a.Executor
	if executor == nil {
		executor = CommandExecutor{}
	}
	res := executor.Execute(ctx, ApplyJob{
		RunID: in.RunID, Workspace: in.Workspace, PlanSHA256: in.PlanSHA256, PlanFile: planFile, Apply: *ws.Apply,
	})
	res.StartedAt = started
	res.FinishedAt = time.Now().UTC()
	a.Logger.Info("apply finished",
		zap.String("run_id", in.RunID), zap.String("workspace", in.Workspace),
		zap.String("plan_sha256", in.PlanSHA256), zap.Int("exit_code", res.ExitCode), zap.String("error", res.Error))
	return res, nil
}

// CommandExecutor runs the workspace's apply command with the run id, the
// workspace, the plan hash and the plan file in its environment.
type CommandExecutor struct{}

// Execute runs the command, heartbeating while it runs and asking it to stop
// gracefully (SIGTERM, then a kill after a grace period) if the activity is
// cancelled.
func (CommandExecutor) Execute(ctx context.Context, job ApplyJob) approval.ApplyResult {
	ap := job.Apply
	res := approval.ApplyResult{Command: ap.Command}
	cmd := exec.CommandContext(ctx, ap.Command[0], ap.Command[1:]...)
	cmd.Dir = ap.Dir
	cmd.Env = append(os.Environ(),
		"GATEHOUSE_RUN_ID="+job.RunID,
		"GATEHOUSE_WORKSPACE="+job.Workspace,
		"GATEHOUSE_PLAN_SHA256="+job.PlanSHA256,
		"GATEHOUSE_PLAN_FILE="+job.PlanFile,
	)
	out := &tailBuffer{limit: outputLimit}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second

	if err := cmd.Start(); err != nil {
		res.ExitCode = -1
		res.Error = fmt.Sprintf("start apply command: %v", err)
		return res
	}
	res.Executed = true
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	res.Output = out.String()
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitCode()
		if res.ExitCode == 0 {
			res.ExitCode = -1
		}
		res.Error = fmt.Sprintf("apply command failed: %v", err)
	case err != nil:
		res.ExitCode = -1
		res.Error = fmt.Sprintf("apply command: %v", err)
	}
	return res
}

// tailBuffer keeps the last limit bytes written to it.
type tailBuffer struct {
	mu    sync.Mutex
	buf   []byte
	limit int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.limit; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
