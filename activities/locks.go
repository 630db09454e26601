package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
)

// LockStore holds each workspace's apply lock as a file in the data dir,
// outside workflow history: one run of a workspace applies at a time, and a
// lock can be neither forged nor released by a Temporal signal. A run that
// holds a lock gives it back when it leaves its apply; a lock whose holder's
// workflow has closed (terminated, say) is taken over.
type LockStore struct {
	dir string
}

// Lock is what a lock file says.
type Lock struct {
	RunID string    `json:"run_id"`
	Since time.Time `json:"since"`
}

var lockNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// NewLockStore opens (creating if needed) a lock store in dir.
func NewLockStore(dir string) (*LockStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create lock store %s: %w", dir, err)
	}
	return &LockStore{dir: dir}, nil
}

// alive reports whether a run's workflow is still open. It errs on the side
// of alive: a lock is taken over only when its holder is known to be done.
type alive func(ctx context.Context, runID string) bool

// acquire gives workspace's lock to runID, or names its holder. The read,
// the check of the holder and the write happen under an exclusive flock of
// a side file, so two workers racing for a stale lock cannot both win.
func (s *LockStore) acquire(ctx context.Context, workspace, runID string, now time.Time, isAlive alive) (bool, string, error) {
	if !lockNamePattern.MatchString(workspace) || !runIDPattern.MatchString(runID) {
		return false, "", fmt.Errorf("lock %q for %q: unsafe name", workspace, runID)
	}
	unlock, err := s.mutex(workspace)
	if err != nil {
		return false, "", err
	}
	defer unlock()
	path := filepath.Join(s.dir, workspace+".lock")
	held, err := readLock(path)
	switch {
	case errors.Is(err, errUnreadableLock):
		// Nobody can say whose it is, so nobody can say it is free.
		return false, "(unreadable lock file " + path + ")", nil
	case err == nil && held.RunID == runID:
		return true, runID, nil
	case err == nil && isAlive(ctx, held.RunID):
		return false, held.RunID, nil
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return false, "", err
	}
	return true, runID, writeLock(path, Lock{RunID: runID, Since: now.UTC()})
}

// release gives workspace's lock back if runID holds it.
func (s *LockStore) release(workspace, runID string) error {
	if !lockNamePattern.MatchString(workspace) {
		return fmt.Errorf("lock %q: unsafe name", workspace)
	}
	unlock, err := s.mutex(workspace)
	if err != nil {
		return err
	}
	defer unlock()
	path := filepath.Join(s.dir, workspace+".lock")
	held, err := readLock(path)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, errUnreadableLock) || (err == nil && held.RunID != runID) {
		return nil // not ours: nothing to give back
	}
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("release lock %s: %w", path, err)
	}
	return nil
}

// mutex takes an exclusive flock on the workspace's side file.
func (s *LockStore) mutex(workspace string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.dir, workspace+".mutex"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", workspace, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", workspace, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func readLock(path string) (Lock, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Lock{}, err
	}
	var l Lock
	if err := json.Unmarshal(data, &l); err != nil || l.RunID == "" {
		return Lock{}, errUnreadableLock
	}
	return l, nil
}

// errUnreadableLock: a torn or foreign lock file.
var errUnreadableLock = errors.New("unreadable lock file")

func writeLock(path string, l Lock) error {
	data, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("encode lock: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write lock %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write lock %s: %w", path, err)
	}
	return nil
}

// LockInput names a workspace's apply lock and the run that wants it.
type LockInput struct {
	Workspace string `json:"workspace"`
	RunID     string `json:"run_id"`
}

// LockResult says whether the run holds the lock now, and if not, who does.
// (A granted lock's holder is the run itself: the result stays in the
// run's history, so it does not say so again.)
type LockResult struct {
	Granted bool   `json:"granted"`
	Holder  string `json:"holder,omitempty"`
}

// AcquireApplyLock gives the run its workspace's apply lock, or names the
// run that holds it (the caller waits queued and asks again).
func (a *Activities) AcquireApplyLock(ctx context.Context, in LockInput) (LockResult, error) {
	if a.Locks == nil {
		return LockResult{}, errors.New("no lock store configured on this worker")
	}
	granted, holder, err := a.Locks.acquire(ctx, in.Workspace, in.RunID, time.Now(), a.workflowOpen)
	if err != nil {
		return LockResult{}, fmt.Errorf("acquire apply lock of %s: %w", in.Workspace, err)
	}
	if granted {
		return LockResult{Granted: true}, nil
	}
	return LockResult{Holder: holder}, nil
}

// ReleaseApplyLock gives the run's lock back (a no-op if it holds none).
func (a *Activities) ReleaseApplyLock(_ context.Context, in LockInput) error {
	if a.Locks == nil {
		return errors.New("no lock store configured on this worker")
	}
	if err := a.Locks.release(in.Workspace, in.RunID); err != nil {
		return fmt.Errorf("release apply lock of %s: %w", in.Workspace, err)
	}
	return nil
}

// workflowOpen asks Temporal whether a run's workflow is still open. Only a
// definite answer that it is closed or gone counts as not alive.
func (a *Activities) workflowOpen(ctx context.Context, runID string) bool {
	if a.Temporal == nil {
		return true
	}
	return workflowOpen(ctx, a.Temporal, runID)
}

func workflowOpen(ctx context.Context, c client.Client, runID string) bool {
	desc, err := c.DescribeWorkflowExecution(ctx, runID, "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return false
	case err != nil:
		return true
	}
	return desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}
