package devserver_test

import (
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/devserver"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	// Registers the "sqlite" database/sql driver (the one the server uses).
	_ "modernc.org/sqlite"
)

// testLogger writes to stderr rather than through t.Log: server goroutines may
// still log while a test is finishing, and testing.T panics on late logs.
func testLogger() *zap.Logger {
	enc := zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig())
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(os.Stderr), zapcore.InfoLevel))
}

func startServer(t *testing.T, opts devserver.Options) *devserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	begin := time.Now()
	srv, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("started in %v: frontend %s, UI %q", time.Since(begin), srv.FrontendAddr(), srv.UIURL())
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return srv
}

func dial(t *testing.T, srv *devserver.Server) client.Client {
	t.Helper()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := client.Dial(client.Options{
		HostPort:  srv.FrontendAddr(),
		Namespace: srv.Namespace(),
		Logger:    sdklog.NewStructuredLogger(quiet),
	})
	if err != nil {
		t.Fatalf("dial %s: %v", srv.FrontendAddr(), err)
	}
	return c
}

func TestStartFreshDataDir(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, devserver.Options{
		DataDir:      dir,
		FrontendAddr: "127.0.0.1:0",
		UIAddr:       "127.0.0.1:0",
		Logger:       testLogger(),
	})
	if strings.HasSuffix(srv.FrontendAddr(), ":0") {
		t.Fatalf("FrontendAddr %q still has port 0", srv.FrontendAddr())
	}
	c := dial(t, srv)
	defer c.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ns, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
	if err != nil {
		t.Fatalf("DescribeNamespace: %v", err)
	}
	if got := ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(); got != 30*24*time.Hour {
		t.Errorf("retention = %v, want 720h", got)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.UIURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", srv.UIURL(), err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: status %d, want 200", srv.UIURL(), resp.StatusCode)
	}

	dbPath := filepath.Join(dir, "temporal.db")
	if _, err := os.Stat(dbPath + "-wal"); err != nil {
		t.Errorf("WAL file missing while server runs: %v", err)
	}
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatalf("PRAGMA journal_mode: %v", err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

func waitForSignal(ctx workflow.Context) (string, error) {
	var v string
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, &v)
	return "got " + v, nil
}

func TestRestartKeepsWorkflows(t *testing.T) {
	dir := t.TempDir()
	goroutinesBefore := runtime.NumGoroutine()
	opts := devserver.Options{
		DataDir:      dir,
		FrontendAddr: "127.0.0.1:0",
		Namespace:    "gatehouse-test",
		Retention:    48 * time.Hour,
		Logger:       testLogger(),
	}
	const taskQueue = "devserver-test"
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()

	// First life: start a workflow and let a worker run its first task.
	srv1, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatalf("first Start: %v", err)
	}
	c1 := dial(t, srv1)
	w1 := worker.New(c1, taskQueue, worker.Options{})
	w1.RegisterWorkflow(waitForSignal)
	if err := w1.Start(); err != nil {
		t.Fatal(err)
	}
	run, err := c1.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "wait-1", TaskQueue: taskQueue}, waitForSignal)
	if err != nil {
		t.Fatalf("ExecuteWorkflow: %v", err)
	}
	// Started, task scheduled, started, completed: the worker has run it.
	for {
		d, err := c1.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
		if err != nil {
			t.Fatalf("describe before restart: %v", err)
		}
		if d.GetWorkflowExecutionInfo().GetHistoryLength() >= 4 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("first workflow task never completed")
		case <-time.After(50 * time.Millisecond):
		}
	}
	w1.Stop()
	c1.Close()
	begin := time.Now()
	if err := srv1.Stop(); err != nil {
		t.Fatalf("first Stop: %v", err)
	}
	t.Logf("stopped in %v", time.Since(begin))
	if err := srv1.Stop(); err != nil {
		t.Fatalf("second Stop call: %v", err)
	}
	t.Logf("goroutines: %d before start, %d after stop", goroutinesBefore, runtime.NumGoroutine())

	// Second life on the same data dir. A different Retention must not touch
	// the existing namespace.
	opts.Retention = 72 * time.Hour
	srv2 := startServer(t, opts)
	c2 := dial(t, srv2)
	defer c2.Close()

	ns, err := c2.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: opts.Namespace})
	if err != nil {
		t.Fatalf("DescribeNamespace after restart: %v", err)
	}
	if got := ns.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(); got != 48*time.Hour {
		t.Errorf("retention after restart = %v, want 48h", got)
	}
	d, err := c2.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
	if err != nil {
		t.Fatalf("describe after restart: %v", err)
	}
	if st := d.GetWorkflowExecutionInfo().GetStatus(); st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		t.Fatalf("status after restart = %v, want RUNNING", st)
	}

	w2 := worker.New(c2, taskQueue, worker.Options{})
	w2.RegisterWorkflow(waitForSignal)
	if err := w2.Start(); err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	begin = time.Now()
	if err := c2.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), "go", "now"); err != nil {
		t.Fatalf("SignalWorkflow: %v", err)
	}
	var result string
	if err := c2.GetWorkflow(ctx, run.GetID(), run.GetRunID()).Get(ctx, &result); err != nil {
		t.Fatalf("workflow result: %v", err)
	}
	if result != "got now" {
		t.Errorf("result = %q, want %q", result, "got now")
	}
	t.Logf("signal to completion: %v", time.Since(begin))
}

func TestStartFrontendPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()

	dir := t.TempDir()
	srv, err := devserver.Start(context.Background(), devserver.Options{
		DataDir:      dir,
		FrontendAddr: addr,
		Logger:       testLogger(),
	})
	if err == nil {
		_ = srv.Stop()
		t.Fatal("Start succeeded on a taken port")
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q does not name %s", err, addr)
	}
	if _, statErr := os.Stat(filepath.Join(dir, "temporal.db")); !errors.Is(statErr, os.ErrNotExist) {
		t.Errorf("database created despite port clash (stat: %v)", statErr)
	}
}

func TestOptionsValidation(t *testing.T) {
	base := devserver.Options{DataDir: t.TempDir(), FrontendAddr: "127.0.0.1:0", Logger: testLogger()}
	for name, mutate := range map[string]func(*devserver.Options){
		"no logger":    func(o *devserver.Options) { o.Logger = nil },
		"no data dir":  func(o *devserver.Options) { o.DataDir = "" },
		"no frontend":  func(o *devserver.Options) { o.FrontendAddr = "" },
		"host name":    func(o *devserver.Options) { o.FrontendAddr = "example.com:7233" },
		"bad UI port":  func(o *devserver.Options) { o.UIAddr = "127.0.0.1:http" },
		"negative ttl": func(o *devserver.Options) { o.Retention = -time.Hour },
		"TLS without a client config": func(o *devserver.Options) {
			o.TLS = &devserver.TLS{Server: &tls.Config{}}
		},
		"TLS with the UI": func(o *devserver.Options) {
			o.TLS, o.UIAddr = &devserver.TLS{Server: &tls.Config{}, Client: &tls.Config{}}, "127.0.0.1:0"
		},
		"postgres without a visibility database": func(o *devserver.Options) {
			o.Postgres = &devserver.Postgres{Addr: "127.0.0.1:5432", User: "u", Database: "t"}
		},
		"postgres with one database for both": func(o *devserver.Options) {
			o.Postgres = &devserver.Postgres{Addr: "127.0.0.1:5432", User: "u", Database: "t", VisibilityDatabase: "t"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			o := base
			mutate(&o)
			if srv, err := devserver.Start(context.Background(), o); err == nil {
				_ = srv.Stop()
				t.Fatal("Start accepted invalid options")
			} else {
				t.Log(err)
			}
		})
	}
}

// startWithUI starts a server with the UI on a fresh data dir unless dir is
// given.
func startWithUI(t *testing.T, dir string) *devserver.Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	return startServer(t, devserver.Options{
		DataDir:      dir,
		FrontendAddr: "127.0.0.1:0",
		UIAddr:       "127.0.0.1:0",
		Logger:       testLogger(),
	})
}

// uiCall sends one request to the UI's HTTP API, with no retry: the point of
// the callers is what the very first request sees. The Authorization header
// is what a script would send; with it the UI skips its CSRF check (auth is
// off, so any value is accepted).
func uiCall(t *testing.T, method, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var body io.Reader
	if method != http.MethodGet {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer test")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

// TestUIServesQueriesRightAfterStart queries the namespace's workflow list
// through the UI the instant Start returns: Start must not report ready
// before the UI can reach the frontend. Three fresh data dirs, then a
// restart on an existing one.
func TestUIServesQueriesRightAfterStart(t *testing.T) {
	var dir string
	for i := range 3 {
		dir = t.TempDir()
		srv := startWithUI(t, dir)
		url := srv.UIURL() + "/api/v1/namespaces/" + srv.Namespace() + "/workflows"
		if code, body := uiCall(t, http.MethodGet, url); code != http.StatusOK {
			t.Errorf("fresh start %d: GET %s: status %d, want 200: %s", i+1, url, code, body)
		}
		if err := srv.Stop(); err != nil {
			t.Fatalf("Stop: %v", err)
		}
	}
	srv := startWithUI(t, dir)
	url := srv.UIURL() + "/api/v1/namespaces/" + srv.Namespace() + "/workflows"
	if code, body := uiCall(t, http.MethodGet, url); code != http.StatusOK {
		t.Errorf("restart: GET %s: status %d, want 200: %s", url, code, body)
	}
}

// TestUIActionsLimited checks what the embedded UI lets anyone who reaches
// it do: its settings hide every action but cancel and terminate, and its
// API refuses the hidden ones instead of only hiding their buttons. It
// also reads payloads through the codec server it was given.
func TestUIActionsLimited(t *testing.T) {
	srv := startServer(t, devserver.Options{
		DataDir: t.TempDir(), FrontendAddr: "127.0.0.1:0", UIAddr: "127.0.0.1:0", Logger: testLogger(),
		CodecEndpoint: "http://127.0.0.1:8080/codec",
	})
	code, body := uiCall(t, http.MethodGet, srv.UIURL()+"/api/v1/settings")
	if code != http.StatusOK {
		t.Fatalf("GET settings: status %d: %s", code, body)
	}
	var settings map[string]any
	if err := json.Unmarshal([]byte(body), &settings); err != nil {
		t.Fatalf("settings: %v: %s", err, body)
	}
	for field, want := range map[string]bool{
		"WorkflowSignalDisabled":    true,
		"WorkflowUpdateDisabled":    true,
		"WorkflowResetDisabled":     true,
		"WorkflowPauseDisabled":     true,
		"ActivityCommandsDisabled":  true,
		"BatchActionsDisabled":      true,
		"StartWorkflowDisabled":     true,
		"WorkflowCancelDisabled":    false,
		"WorkflowTerminateDisabled": false,
		"DisableWriteActions":       false,
	} {
		if got, ok := settings[field].(bool); !ok || got != want {
			t.Errorf("settings %s = %v; want %v", field, settings[field], want)
		}
	}
	// The UI decodes payloads with the gateway's codec, with the cookies
	// that sign an admin in.
	codec, _ := settings["Codec"].(map[string]any)
	if codec["Endpoint"] != "http://127.0.0.1:8080/codec" || codec["IncludeCredentials"] != true {
		t.Errorf("settings Codec = %v; want the gateway's /codec, with credentials", settings["Codec"])
	}

	ns := srv.UIURL() + "/api/v1/namespaces/" + srv.Namespace()
	for _, tc := range []struct {
		name, path string
		refused    bool
	}{
		{"signal", "/workflows/wf-1/signal/approve", true},
		{"update", "/workflows/wf-1/update/approve", true},
		{"reset", "/workflows/wf-1/reset", true},
		{"start", "/workflows/wf-1", true},
		{"signal with start", "/workflows/wf-1/signal-with-start/approve", true},
		{"batch", "/batch-operations/job-1", true},
		{"schedule", "/schedules/sched-1", true},
		{"complete activity", "/workflows/wf-1/activities/act-1/complete", true},
		// A workflow ID that looks like an allowed route is still a start.
		{"start disguised as cancel", "/workflows/wf-1%2Fcancel", true},
		// These reach the frontend, which answers that wf-1 does not exist.
		{"cancel", "/workflows/wf-1/cancel", false},
		{"terminate", "/workflows/wf-1/terminate", false},
		{"query", "/workflows/wf-1/query/state", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := uiCall(t, http.MethodPost, ns+tc.path)
			refused := code == http.StatusForbidden && strings.Contains(body, "gatehouse dev")
			if refused != tc.refused {
				t.Errorf("POST %s: status %d (refused %v); want refused %v: %s", tc.path, code, refused, tc.refused, body)
			}
			if !tc.refused && code != http.StatusNotFound {
				t.Errorf("POST %s: status %d; want 404 from the frontend: %s", tc.path, code, body)
			}
		})
	}
}
