package tests

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/starter"
)

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// checkMetrics scrapes a process's /metrics and fails the test unless every
// line of want is in it.
func checkMetrics(t *testing.T, addr string, want []string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %d %v", addr, resp.StatusCode, err)
	}
	for _, w := range want {
		if !strings.Contains(string(body), w) {
			t.Errorf("metrics of %s lack %q", addr, w)
		}
	}
}

// checkRetention fails the test unless the server's default namespace keeps
// closed workflows for want.
func checkRetention(ctx context.Context, t *testing.T, ts *temporaltest.TestServer, want time.Duration) {
	t.Helper()
	c, err := client.DialContext(ctx, client.Options{HostPort: ts.GetFrontendHostPort(), Namespace: ts.GetDefaultNamespace()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := starter.Retention(ctx, c, ts.GetDefaultNamespace())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("namespace retention %s; want %s", got, want)
	}
}

// TestSeparateProcessesAgainstACluster runs the deployment shape: gatehouse
// setup, then a worker and a gateway, each on its own, against an external
// Temporal server (here temporaltest), sharing only the config and the data
// dir.
func TestSeparateProcessesAgainstACluster(t *testing.T) {
	dir := t.TempDir()
	script, err := filepath.Abs("../examples/apply.sh")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(renderConfig(t, script, "1h", "http://127.0.0.1:9/unused")), 0o600); err != nil {
		t.Fatal(err)
	}
	applyLog := filepath.Join(dir, "applied.log")
	t.Setenv("APPLY_LOG", applyLog)

	ts := temporaltest.NewServer(temporaltest.WithT(t))
	opts := app.Options{
		ConfigPath: cfgPath, DataDir: filepath.Join(dir, "data"),
		TemporalAddr: ts.GetFrontendHostPort(), Namespace: ts.GetDefaultNamespace(),
		HTTPAddr: freeAddr(t), Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		SigningKeys: testSigningKey,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Setup(ctx, opts); err != nil {
		t.Fatalf("setup: %v", err)
	}
	if err := app.Setup(ctx, opts); err != nil {
		t.Fatalf("setup is not idempotent: %v", err)
	}
	checkRetention(ctx, t, ts, app.DefaultRetention)
	short := opts
	short.Retention = 48 * time.Hour
	if err := app.Setup(ctx, short); err != nil {
		t.Fatalf("setup --retention 48h: %v", err)
	}
	checkRetention(ctx, t, ts, 48*time.Hour)
	short.Retention = time.Hour
	if err := app.Setup(ctx, short); err == nil {
		t.Error("setup took a retention of an hour, which Temporal does not keep")
	}

	// Both processes keep the audit trail in one SQLite file, and each
	// serves its metrics.
	t.Setenv(app.DatabaseEnv, "sqlite:"+filepath.Join(dir, "audit.db"))
	workerOpts, gatewayOpts := opts, opts
	workerOpts.MetricsAddr, gatewayOpts.MetricsAddr = freeAddr(t), freeAddr(t)
	procs, stop := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- app.RunWorker(procs, workerOpts) }()
	go func() { done <- app.RunGateway(procs, gatewayOpts) }()
	s := &stack{t: t, url: "http://" + opts.HTTPAddr, applyLog: applyLog}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not healthy: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
	s.decide(run, "approve", "t-carol", nil, http.StatusOK)
	s.waitFor(run, approval.StatusApplied)
	if lines := s.applied(); len(lines) != 1 {
		t.Errorf("apply ran %d times; want once", len(lines))
	}
	s.trail(run, "t-victor", approval.AuditApplied)
	checkMetrics(t, workerOpts.MetricsAddr, []string{
		`gatehouse_apply_duration_seconds_count{result="applied"} 1`,
		`gatehouse_approval_wait_seconds_count{action="approved"} 2`,
		"temporal_", // the SDK's own, through the same registry
		"go_goroutines",
	})
	checkMetrics(t, gatewayOpts.MetricsAddr, []string{
		`gatehouse_decisions_total{channel="api",kind="approve",outcome="accepted"} 2`,
		`gatehouse_http_request_duration_seconds_count{code="201",method="POST",route="/api/v1/workspaces/:ws/runs"} 1`,
		`gatehouse_runs{status="applied"} 1`,
	})
	s.decide(run, "approve", "t-bob", nil, http.StatusConflict)
	checkMetrics(t, gatewayOpts.MetricsAddr, []string{`gatehouse_decisions_total{channel="api",kind="approve",outcome="conflict"} 1`})
	pending := s.createRun("prod-network", "t-alice", "prod-network.json")
	var stuck []string
	for time.Now().Before(deadline) {
		runs, err := app.Stuck(ctx, opts, -time.Minute, "")
		if err != nil {
			t.Fatalf("stuck: %v", err)
		}
		stuck = stuck[:0]
		for _, r := range runs {
			stuck = append(stuck, r.ID)
		}
		if len(stuck) == 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(stuck) != 1 || stuck[0] != pending.ID {
		t.Errorf("stuck runs %v; want only %s", stuck, pending.ID)
	}

	stop()
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("process stopped with %v; want a clean stop", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("a process did not stop")
		}
	}
}
