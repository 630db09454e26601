package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"time"
)

var (
	// runIDPattern is what a run id must look like before it becomes part
	// of a file name: no separators, no dots, so no way out of the claims
	// directory.
	runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$`)
	// planHashPattern is a plan's hex SHA-256 as the plan store names it.
	planHashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Claim records that one attempt has started to apply a run's plan. It
// lives on disk, outside workflow history, so that nothing Temporal can do
// to a workflow — a reset in the Web UI, a retry, a replay, a second worker
// on the same task — can make the same plan apply twice for the same run.
type Claim struct {
	RunID      string `json:"run_id"`
	PlanSHA256 string `json:"plan_sha256"`
	// WorkflowRunID is the Temporal run of the workflow that asked: a reset
	// starts a new one, which is how an operator tells the attempts apart.
	WorkflowRunID string `json:"workflow_run_id"`
	ActivityID    string `json:"activity_id"`
	Attempt       int32  `json:"attempt"`
	// Worker is the Temporal identity of the worker that ran the attempt,
	// as the workflow's history shows it.
	Worker    string        `json:"worker"`
	Host      string        `json:"host"`
	PID       int           `json:"pid"`
	ClaimedAt time.Time     `json:"claimed_at"`
	Outcome   *ClaimOutcome `json:"outcome,omitempty"`
}

// ClaimOutcome is how the claimed apply ended, as its worker saw it. A claim
// without one is an apply nobody saw end.
type ClaimOutcome struct {
	Executed   bool      `json:"executed"`
	ExitCode   int       `json:"exit_code"`
	Error      string    `json:"error,omitempty"`
	FinishedAt time.Time `json:"finished_at"`
	LogSHA256  string    `json:"log_sha256,omitempty"`
}

// ClaimedError is returned by Claim when the run's plan was claimed before.
type ClaimedError struct {
	First Claim
}

func (e *ClaimedError) Error() string {
	c := e.First
	msg := fmt.Sprintf("the apply of plan %s for run %s was already started at %s by attempt %d of workflow run %s on worker %s (host %s, pid %d)",
		c.PlanSHA256, c.RunID, c.ClaimedAt.Format(time.RFC3339), c.Attempt, c.WorkflowRunID, c.Worker, c.Host, c.PID)
	if o := c.Outcome; o != nil {
		msg += fmt.Sprintf("; it finished at %s with exit code %d", o.FinishedAt.Format(time.RFC3339), o.ExitCode)
		if o.Error != "" {
			msg += " (" + o.Error + ")"
		}
		if o.LogSHA256 != "" {
			msg += ", log " + o.LogSHA256
		}
	} else {
		msg += "; it recorded no outcome: it may have applied in part, in whole or not at all"
	}
	return msg + ". Not applying again: check the infrastructure"
}

// ClaimStore keeps claims as files in one directory, one per run and plan.
// Who claimed first is state of the directory only, so any number of
// workers sharing the data dir agree on it: the file system decides.
type ClaimStore struct {
	dir string
	// open counts the claims this process made and has not finished: the
	// applies it runs. A stopping worker waits for them (Wait).
	open atomic.Int64
}

// NewClaimStore opens (creating if needed) a claim store in dir.
func NewClaimStore(dir string) (*ClaimStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create claim store %s: %w", dir, err)
	}
	return &ClaimStore{dir: dir}, nil
}

// path is the claim file of a run's plan, once both are checked to be safe
// in a file name.
func (s *ClaimStore) path(runID, planSHA256 string) (string, error) {
	if !runIDPattern.MatchString(runID) {
		return "", fmt.Errorf("claim: malformed run id %q", runID)
	}
	if !planHashPattern.MatchString(planSHA256) {
		return "", fmt.Errorf("claim: malformed plan hash %q", planSHA256)
	}
	return filepath.Join(s.dir, runID+"."+planSHA256+".json"), nil
}

// Claim records c as the one attempt allowed to apply c.PlanSHA256 for
// c.RunID. The file is created with O_EXCL, so of two racing attempts
// exactly one wins, and it is synced with its directory before Claim
// returns, so a claim that was acted on survives a crash of the machine.
// A claim that exists already is a *ClaimedError carrying it.
func (s *ClaimStore) Claim(c Claim) error {
	path, err := s.path(c.RunID, c.PlanSHA256)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("claim %s: %w", c.RunID, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return claimed(path, c.RunID, c.PlanSHA256)
	}
	if err != nil {
		return fmt.Errorf("claim %s: %w", c.RunID, err)
	}
	if err := writeSynced(f, data); err != nil {
		// A claim file that exists but is incomplete still blocks a
		// second apply: claimed reports it as a claim it cannot read.
		return fmt.Errorf("claim %s: %w", c.RunID, err)
	}
	// Counted from here: the caller holds the claim and will finish it,
	// even if syncing the directory fails below.
	s.open.Add(1)
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("claim %s: %w", c.RunID, err)
	}
	return nil
}

// claimed returns the *ClaimedError for the claim at path. A claim that
// cannot be read (a crash while it was written) still counts as a claim:
// what is known of it is its name and its file's time.
func claimed(path, runID, planSHA256 string) error {
	first, err := readClaim(path)
	if err != nil {
		first = Claim{RunID: runID, PlanSHA256: planSHA256, Worker: "unknown (" + err.Error() + ")"}
		if info, statErr := os.Stat(path); statErr == nil {
			first.ClaimedAt = info.ModTime().UTC()
		}
	}
	return &ClaimedError{First: first}
}

// Finish records the outcome of the claimed apply of a run's plan. The
// claim is rewritten aside and renamed over the old one, so a reader sees
// either the claim without its outcome or the claim with it, never half.
func (s *ClaimStore) Finish(runID, planSHA256 string, out ClaimOutcome) error {
	defer s.open.Add(-1)
	path, err := s.path(runID, planSHA256)
	if err != nil {
		return err
	}
	c, err := readClaim(path)
	if err != nil {
		return fmt.Errorf("finish claim %s: %w", runID, err)
	}
	c.Outcome = &out
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("finish claim %s: %w", runID, err)
	}
	tmp, err := os.CreateTemp(s.dir, ".claim-*")
	if err != nil {
		return fmt.Errorf("finish claim %s: %w", runID, err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if err := writeSynced(tmp, data); err != nil {
		return fmt.Errorf("finish claim %s: %w", runID, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("finish claim %s: %w", runID, err)
	}
	if err := syncDir(s.dir); err != nil {
		return fmt.Errorf("finish claim %s: %w", runID, err)
	}
	return nil
}

// Wait waits until every claim this process made is finished, or ctx ends,
// and reports whether none is open. A stopping worker calls it after the
// SDK's Stop: past the stop timeout Stop cancels the applies' contexts and
// returns at once, and the process must outlive their grace period, or the
// apply would be stopped by the worker's death instead of by its SIGKILL,
// and no claim would record the outcome.
func (s *ClaimStore) Wait(ctx context.Context) bool {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for s.open.Load() > 0 {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}

// Get returns the claim of a run's plan; os.ErrNotExist (wrapped) when there
// is none.
func (s *ClaimStore) Get(runID, planSHA256 string) (Claim, error) {
	path, err := s.path(runID, planSHA256)
	if err != nil {
		return Claim{}, err
	}
	return readClaim(path)
}

func readClaim(path string) (Claim, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Claim{}, fmt.Errorf("read claim: %w", err)
	}
	var c Claim
	if err := json.Unmarshal(data, &c); err != nil {
		return Claim{}, fmt.Errorf("read claim %s: %w", filepath.Base(path), err)
	}
	return c, nil
}

// writeSynced writes data to f, syncs and closes it.
func writeSynced(f *os.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes a file created or renamed in dir durable: without it a
// crash can lose the directory entry even though the file's bytes were
// synced.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
