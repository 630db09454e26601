package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/gateway"
)

// pollInterval is how often wait reads the run.
const pollInterval = 2 * time.Second

// maxUnreachable is how long wait rides out a gateway it cannot reach (a
// restart, a deploy) before it gives up: a pipeline may wait for hours.
const maxUnreachable = 5 * time.Minute

// errWaitTimeout is the cause of a wait's context ending at --timeout.
var errWaitTimeout = errors.New("wait timed out")

// waitFlags are the flags of wait, also taken by start --wait.
type waitFlags struct {
	out      string
	timeout  time.Duration
	interval time.Duration
}

func (w *waitFlags) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&w.out, "out", "", "when the run is approved or applied, write its signed approval to this file")
	f.DurationVar(&w.timeout, "timeout", 0, "give up waiting after this long, e.g. 4h (exit 12); 0 waits as long as the run does")
	f.DurationVar(&w.interval, "poll-interval", pollInterval, "how often to read the run")
	_ = f.MarkHidden("poll-interval")
}

func newWaitCmd() *cobra.Command {
	var (
		a runArgs
		w waitFlags
	)
	cmd := &cobra.Command{
		Use:   "wait RUN",
		Short: "Wait until a run is done, printing its progress; the exit code says how it ended",
		Long: `Wait until a run is done: applied, approved in a gate-only workspace, or
ended otherwise. It reads the run every 2 seconds and prints a line whenever
its status or a reason's progress changes. With --out, a run that ends
approved or applied has its signed approval written to the file, for
"gatehouse verify" before the pipeline applies.

` + exitCodesHelp,
		Example: `  gatehouse wait -w prod-network run-01J… --timeout 4h
  gatehouse wait -w ci-gate run-01J… --out approval.json && gatehouse verify approval.json --plan plan.json`,
		Args: cobra.ExactArgs(1),
	}
	cmd.RunE = withJSONErrors(&a.asJSON, func(cmd *cobra.Command, args []string) error {
		c, err := a.client(true)
		if err != nil {
			return err
		}
		return w.run(cmd, c, a, args[0])
	})
	a.bind(cmd)
	w.bind(cmd)
	return cmd
}

// waitResult is what wait prints with --json.
type waitResult struct {
	Run          *gateway.RunView `json:"run,omitempty"`
	Result       string           `json:"result"`
	ExitCode     int              `json:"exit_code"`
	ApprovalFile string           `json:"approval_file,omitempty"`
	Error        string           `json:"error,omitempty"`
}

// run waits for the run, writes the approval when asked, reports, and
// returns the exit as an *ExitError (nil on success).
func (w *waitFlags) run(cmd *cobra.Command, c *gateway.Client, a runArgs, id string) error {
	ctx := cmd.Context()
	if w.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, w.timeout, errWaitTimeout)
		defer cancel()
	}
	progress := cmd.OutOrStdout()
	if a.asJSON {
		// stdout carries the one JSON object; people still see progress.
		progress = cmd.ErrOrStderr()
	}
	run, err := poll(ctx, c, a.workspace, id, w.interval, progress)
	res := waitResult{Result: string(run.Status), ExitCode: RunExitCode(run.Status)}
	if run.ID != "" {
		res.Run = &run
	}
	switch {
	case errors.Is(err, errWaitTimeout):
		res.Result, res.ExitCode, err = "wait_timeout", ExitWaitTimeout, fmt.Errorf("run %s is still %s after %s", id, run.Status, w.timeout)
	case err != nil:
		res.Result, res.ExitCode = "error", ExitGeneric
	case res.ExitCode == ExitOK && w.out != "":
		if err = fetchApproval(cmd.Context(), c, a.workspace, id, w.out); err != nil {
			// The run stands approved; the pipeline just has no proof.
			res.ExitCode = ExitGeneric
		} else {
			res.ApprovalFile = w.out
		}
	}
	return report(cmd, a.asJSON, res, err)
}

// report prints wait's result and returns its exit.
func report(cmd *cobra.Command, asJSON bool, res waitResult, err error) error {
	if err != nil {
		res.Error = err.Error()
	}
	if asJSON {
		if perr := printJSON(cmd.OutOrStdout(), res); perr != nil {
			return perr
		}
	} else if err == nil {
		msg := "run " + res.Result
		if res.ApprovalFile != "" {
			msg += "; signed approval written to " + res.ApprovalFile
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s (exit %d)\n", msg, res.ExitCode)
	}
	if res.ExitCode == ExitOK {
		return nil
	}
	// A run's own end was reported above; an error is reported by main.
	return &ExitError{Code: res.ExitCode, Err: err, printed: asJSON}
}

// poll reads the run every interval until it is done, writing a progress
// line whenever it changes. It returns the run as last read.
func poll(ctx context.Context, c *gateway.Client, workspace, id string, interval time.Duration, out io.Writer) (gateway.RunView, error) {
	var (
		run       gateway.RunView
		last      string
		failingAt time.Time
	)
	for {
		got, err := getOnce(ctx, c, workspace, id)
		switch {
		case err == nil:
			run, failingAt = got, time.Time{}
			if line := progressLine(run); line != last {
				fmt.Fprintf(out, "%s %s\n", time.Now().Format(time.TimeOnly), line)
				last = line
			}
			if run.Done() {
				return run, nil
			}
		case ctx.Err() != nil:
			// Ended (--timeout, Ctrl-C) while reading: say why.
			return run, context.Cause(ctx)
		case !transient(err) || run.ID == "":
			// A run never read is a wrong URL, token or id: say so now.
			return run, err
		case failingAt.IsZero():
			failingAt = time.Now()
			fmt.Fprintf(out, "%s gateway unreachable, retrying: %v\n", time.Now().Format(time.TimeOnly), err)
		case time.Since(failingAt) > maxUnreachable:
			return run, fmt.Errorf("gateway unreachable for %s: %w", maxUnreachable, err)
		}
		select {
		case <-ctx.Done():
			return run, context.Cause(ctx)
		case <-time.After(interval):
		}
	}
}

func getOnce(ctx context.Context, c *gateway.Client, workspace, id string) (gateway.RunView, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return c.GetRun(ctx, workspace, id)
}

// transient reports whether a failed read is worth retrying: the gateway
// or Temporal behind it was not there, not a refusal.
func transient(err error) bool {
	var api *gateway.APIError
	if errors.As(err, &api) {
		return api.Status >= 500 || api.Status == http.StatusTooManyRequests
	}
	return true
}

// progressLine is the run's status and each reason's progress.
func progressLine(run gateway.RunView) string {
	parts := []string{string(run.Status)}
	for _, r := range run.Reasons {
		parts = append(parts, fmt.Sprintf("%s %s%s", r.Name, r.Progress, approvedBy(r)))
	}
	return strings.Join(parts, "; ")
}

// fetchApproval writes the run's signed approval to path, byte for byte as
// the gateway issued it, replacing the file only once it is complete.
func fetchApproval(ctx context.Context, c *gateway.Client, workspace, id, path string) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	doc, err := c.Approval(ctx, workspace, id)
	if err != nil {
		return fmt.Errorf("fetch signed approval: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".approval-*")
	if err != nil {
		return fmt.Errorf("write signed approval: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	_, werr := tmp.Write(doc)
	if cerr := tmp.Close(); werr != nil || cerr != nil {
		return fmt.Errorf("write signed approval: %w", errors.Join(werr, cerr))
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write signed approval: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write signed approval: %w", err)
	}
	return nil
}
