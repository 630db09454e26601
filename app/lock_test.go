package app

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestLockDataDirRefusesSecondHolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // not there yet: the lock creates it
	first, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("first lock: %v", err)
	}

	second, err := lockDataDir(dir)
	if err == nil {
		_ = second.release()
		t.Fatal("second lock on the same data dir succeeded")
	}
	want := fmt.Sprintf("data dir %s is in use by another gatehouse dev (pid %d): stop it or use --data-dir", dir, os.Getpid())
	if err.Error() != want {
		t.Errorf("second lock: got %q; want %q", err, want)
	}

	if err := first.release(); err != nil {
		t.Fatalf("release: %v", err)
	}
	if err := first.release(); err != nil {
		t.Errorf("second release: got %v; want nil", err)
	}
	third, err := lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	if err := third.release(); err != nil {
		t.Errorf("release: %v", err)
	}
}

// TestLockDataDirAcrossProcesses holds the lock in a child process, as a
// second `gatehouse dev` would meet it, and checks the error names the
// child's pid; once the child exits the lock is free again.
func TestLockDataDirAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	child := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	child.Env = append(os.Environ(), "GATEHOUSE_LOCK_HELPER_DIR="+dir)
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("helper: got %q, %v; want \"locked\"", line, err)
	}

	l, err := lockDataDir(dir)
	if err == nil {
		_ = l.release()
		t.Fatal("lock held by another process was taken")
	}
	if want := fmt.Sprintf("(pid %d)", child.Process.Pid); !strings.Contains(err.Error(), want) {
		t.Errorf("got %q; want it to contain %q", err, want)
	}

	_ = stdin.Close() // the helper exits without releasing: the kernel does
	if err := child.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	l, err = lockDataDir(dir)
	if err != nil {
		t.Fatalf("lock after the holder exited: %v", err)
	}
	_ = l.release()
}

// TestLockHelperProcess is the child of TestLockDataDirAcrossProcesses: it
// takes the lock, says so, and exits when its stdin closes.
func TestLockHelperProcess(t *testing.T) {
	dir := os.Getenv("GATEHOUSE_LOCK_HELPER_DIR")
	if dir == "" {
		t.Skip("helper for TestLockDataDirAcrossProcesses")
	}
	if _, err := lockDataDir(dir); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}
