package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFileName is the file in the data dir a dev process holds locked.
const lockFileName = "gatehouse.lock"

// dataDirLock keeps a second `gatehouse dev` off a data dir in use: two
// Temporal servers on one SQLite file, or two workers on one plan store,
// would corrupt each other's state. It lives in app, not devserver, because
// it guards the whole data dir (plans/ as well as temporal.db) and must be
// taken before loadParts creates plans/.
//
// It is a flock(2) on an open file: the kernel drops it when the process
// exits, however it exits, so a crash never leaves a stale lock behind. The
// file itself is never removed; removing it would let a later process lock
// a new file while an earlier one still holds the old one.
type dataDirLock struct {
	f *os.File
}

// lockDataDir creates dir if needed and takes its lock without waiting,
// recording this process's pid in the lock file for the error message of
// whoever comes next.
func lockDataDir(dir string) (*dataDirLock, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolve data dir %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	path := filepath.Join(abs, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	// A flock belongs to the open file, not the process, so a second lock
	// in this same process is refused too, as it should be.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another gatehouse dev%s: stop it or use --data-dir", abs, holder(path))
		}
		return nil, fmt.Errorf("lock data dir %s: %w", abs, err)
	}
	if err := writePID(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("write pid to %s: %w", path, err)
	}
	return &dataDirLock{f: f}, nil
}

// writePID replaces the file's content with this process's pid. The
// content is only ever read while the lock is held, so it always names the
// current holder.
func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// holder is " (pid N)" for the pid in the lock file, or "" if it cannot be
// read: the holder may have locked the file and not yet written its pid.
func holder(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return ""
	}
	return fmt.Sprintf(" (pid %d)", pid)
}

// release unlocks the data dir. It is safe on a nil lock and when called
// twice.
func (l *dataDirLock) release() error {
	if l == nil || l.f == nil {
		return nil
	}
	// Closing the only descriptor drops the flock.
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("release data dir lock: %w", err)
	}
	return nil
}
