package tests

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/server/temporaltest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

// workerOptionsEnv carries a worker process's options from the test that
// starts it. Its GATEHOUSE_ prefix also keeps it out of the apply's
// environment.
const workerOptionsEnv = "GATEHOUSE_TEST_WORKER_OPTIONS"

// slowApply records its pid when it starts and writes the marker 3 s later:
// the marker exists only if the apply ran to its end.
const slowApply = `#!/bin/sh
echo $$ >> started
sleep 3
echo done >> marker
`

// TestApplyOnceWorkerProcess is not a test: it is the worker process the
// TestApplyOnce tests start, stop and kill, the test binary run again with
// the options in its environment. It runs app.RunWorker until SIGTERM, as
// `gatehouse worker` does.
func TestApplyOnceWorkerProcess(t *testing.T) {
	raw := os.Getenv(workerOptionsEnv)
	if raw == "" {
		t.Skip("the worker process of the TestApplyOnce tests")
	}
	var opts app.Options
	if err := json.Unmarshal([]byte(raw), &opts); err != nil {
		t.Fatal(err)
	}
	opts.Logger = zap.Must(zap.NewDevelopment())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := app.RunWorker(ctx, opts); err != nil {
		t.Fatal(err)
	}
}

// onceStack is a Temporal server and a gateway in the test process, and
// worker processes started from it.
type onceStack struct {
	*stack
	dir  string
	opts app.Options
}

func newOnceStack(t *testing.T) *onceStack {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "apply.sh")
	if err := os.WriteFile(script, []byte(slowApply), 0o700); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(renderConfig(t, script, "1h", "http://127.0.0.1:9/unused")), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("APPLY_LOG", filepath.Join(dir, "applied.log"))
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	opts := app.Options{
		ConfigPath: cfgPath, DataDir: filepath.Join(dir, "data"),
		TemporalAddr: ts.GetFrontendHostPort(), Namespace: ts.GetDefaultNamespace(),
		HTTPAddr: freeAddr(t), Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		SigningKeys: testSigningKey, StopTimeout: time.Minute,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Setup(ctx, opts); err != nil {
		t.Fatalf("setup: %v", err)
	}
	procs, stop := context.WithCancel(context.Background())
	gw := make(chan error, 1)
	go func() { gw <- app.RunGateway(procs, opts) }()
	t.Cleanup(func() { stop(); <-gw })
	s := &onceStack{stack: &stack{t: t, url: "http://" + opts.HTTPAddr, applyLog: filepath.Join(dir, "applied.log")}, dir: dir, opts: opts}
	s.waitHealthy()
	return s
}

func (s *onceStack) waitHealthy() {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("gateway not healthy: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// workerProc is a worker running in a process of its own.
type workerProc struct {
	cmd  *exec.Cmd
	done chan error
	log  string
}

// startWorker starts a worker process; name names its log file.
func (s *onceStack) startWorker(name string) *workerProc {
	s.t.Helper()
	o := s.opts
	o.Logger = nil
	raw, err := json.Marshal(o)
	if err != nil {
		s.t.Fatal(err)
	}
	w := &workerProc{done: make(chan error, 1), log: filepath.Join(s.dir, name+".log")}
	out, err := os.Create(w.log)
	if err != nil {
		s.t.Fatal(err)
	}
	w.cmd = exec.Command(os.Args[0], "-test.run=^TestApplyOnceWorkerProcess$", "-test.v")
	w.cmd.Env = append(os.Environ(), workerOptionsEnv+"="+string(raw))
	w.cmd.Stdout, w.cmd.Stderr = out, out
	if err := w.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	go func() { w.done <- w.cmd.Wait(); out.Close() }()
	s.t.Cleanup(func() {
		w.cmd.Process.Kill() //nolint:errcheck // gone already is fine
		<-w.done
		if s.t.Failed() {
			data, _ := os.ReadFile(w.log)
			s.t.Logf("%s output:\n%s", name, data)
		}
	})
	return w
}

// wait waits for the process to end and returns how it ended.
func (w *workerProc) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	select {
	case err := <-w.done:
		w.done <- err // for Cleanup
		return err
	case <-time.After(limit):
		t.Fatalf("worker process did not end within %s", limit)
		return nil
	}
}

// lines returns the lines of a file the apply script wrote, nil when absent.
func (s *onceStack) lines(name string) []string {
	data, err := os.ReadFile(filepath.Join(s.dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.Fields(string(data))
}

// waitStarted waits for the apply to start and returns its pid.
func (s *onceStack) waitStarted() int {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if l := s.lines("started"); len(l) > 0 {
			pid, err := strconv.Atoi(l[0])
			if err != nil {
				s.t.Fatal(err)
			}
			return pid
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatal("the apply did not start")
	return 0
}

// waitStatus polls the run until it reaches status, for up to limit.
func (s *onceStack) waitStatus(run gateway.RunView, status approval.Status, limit time.Duration) gateway.RunView {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got := s.get(run)
		if got.Status == status {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("run %s is %s after %s; want %s", run.ID, got.Status, limit, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// alive reports whether pid is a live process (a zombie is not).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(data)
	rest := s[strings.LastIndexByte(s, ')')+1:]
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}

// TestApplyOnceSIGTERMWaitsForTheApply: a worker told to stop while an
// apply runs stops taking work, lets the apply finish, and then exits.
func TestApplyOnceSIGTERMWaitsForTheApply(t *testing.T) {
	s := newOnceStack(t)
	w1 := s.startWorker("worker-1")
	run := s.createRun("staging-app", "t-alice", "prod-network.json")
	s.waitStarted()
	sent := time.Now()
	if err := w1.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := w1.wait(t, 30*time.Second); err != nil {
		t.Errorf("worker process ended with %v; want a clean stop", err)
	}
	t.Logf("worker exited %s after SIGTERM", time.Since(sent).Round(10*time.Millisecond))
	if got := s.lines("marker"); len(got) != 1 {
		t.Fatalf("marker %v; want the apply to have finished before the worker exited", got)
	}
	// The result reached Temporal before the worker left; a new worker
	// runs the workflow on to its end without applying again.
	s.startWorker("worker-2")
	got := s.waitStatus(run, approval.StatusApplied, 60*time.Second)
	if got.Apply == nil || got.Apply.ExitCode != 0 || got.Apply.LogSHA256 == "" {
		t.Errorf("apply %+v; want exit 0 with its log artifact", got.Apply)
	}
	if n := len(s.lines("started")); n != 1 {
		t.Errorf("the apply started %d times; want once", n)
	}
}

// TestApplyOnceSIGKILLKillsTheApply: a worker killed mid-apply takes its
// apply with it (Pdeathsig), and the run ends outcome_unknown once the
// server sees the heartbeats stop: a new worker does not apply again.
func TestApplyOnceSIGKILLKillsTheApply(t *testing.T) {
	s := newOnceStack(t)
	w1 := s.startWorker("worker-1")
	run := s.createRun("staging-app", "t-alice", "prod-network.json")
	pid := s.waitStarted()
	started := time.Now()
	if err := w1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	w1.wait(t, 10*time.Second) //nolint:errcheck // killed: the error says so
	// The apply gets SIGINT (Pdeathsig). A shell defers it until its
	// foreground child (sleep) returns, then exits without going on: gone
	// before it would have written the marker is what counts.
	deadline := started.Add(5 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		t.Errorf("apply process %d outlived its worker", pid)
	}
	t.Logf("apply process gone %s after its worker was killed", time.Since(started).Round(10*time.Millisecond))
	time.Sleep(time.Until(started.Add(4 * time.Second)))
	if got := s.lines("marker"); got != nil {
		t.Fatalf("marker %v; want the apply to have died with its worker", got)
	}
	s.startWorker("worker-2")
	got := s.waitStatus(run, approval.StatusOutcomeUnknown, 3*time.Minute)
	t.Logf("outcome_unknown %s after the kill: %+v", time.Since(started).Round(time.Second), got.Apply)
	if n := len(s.lines("started")); n != 1 {
		t.Errorf("the apply started %d times; want once", n)
	}
}
