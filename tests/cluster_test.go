package tests

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/devserver"
	"github.com/gatehouse-dev/gatehouse/starter"
	"github.com/gatehouse-dev/gatehouse/workflows"
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
	dir, cfgPath, applyLog := writeConfig(t, exampleConfig(t))
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	opts := clusterOptions(t, ts, dir, cfgPath)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
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
	procs := []*inProcess{runInProcess(t, app.RunWorker, workerOpts), runInProcess(t, app.RunGateway, gatewayOpts)}
	s := &stack{t: t, url: "http://" + opts.HTTPAddr, applyLog: applyLog}
	// One deadline for readiness and, below, the stuck-run listing.
	deadline := time.Now().Add(20 * time.Second)
	waitReady(t, s.url)

	run := s.twoApprovalRun()
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

	for _, p := range procs {
		p.Stop(20 * time.Second)
	}
}

// TestSetupCreatesAMissingNamespace: gatehouse setup against a cluster that
// lacks the namespace registers it with the retention asked for and its
// search attributes; a second run changes nothing; the attributes then work
// in visibility queries of the new namespace.
func TestSetupCreatesAMissingNamespace(t *testing.T) {
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	const ns = "gatehouse-setup-new"
	opts := app.Options{
		TemporalAddr: ts.GetFrontendHostPort(), Namespace: ns, Retention: 72 * time.Hour,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: ts.GetFrontendHostPort(), Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := starter.Retention(ctx, c, ns); err == nil {
		t.Fatalf("namespace %s exists before setup; the test needs it missing", ns)
	}

	change, err := app.SetupWait(ctx, opts, 0)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	if !change.Created {
		t.Errorf("first setup: got %+v; want Created", change)
	}
	if got, err := starter.Retention(ctx, c, ns); err != nil || got != 72*time.Hour {
		t.Errorf("retention after setup: got %s, %v; want 72h", got, err)
	}

	change, err = app.SetupWait(ctx, opts, 0)
	if err != nil {
		t.Fatalf("second setup: %v", err)
	}
	if change.Changed() {
		t.Errorf("second setup: got %+v; want no change", change)
	}
	if nc, err := starter.EnsureNamespace(ctx, c, ns, 72*time.Hour); err != nil || nc.Changed() {
		t.Errorf("EnsureNamespace on a namespace as wanted: got %+v, %v; want no change", nc, err)
	}
	// A new retention is the only thing a later run changes.
	longer := opts
	longer.Retention = 96 * time.Hour
	if change, err = app.SetupWait(ctx, longer, 0); err != nil || change.Created || change.RetentionFrom != 72*time.Hour {
		t.Errorf("setup --retention 96h: got %+v, %v; want RetentionFrom 72h", change, err)
	}

	// Every attribute is registered with its type, and visibility accepts
	// a query on them (an unknown attribute is refused as invalid).
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	for name, typ := range workflows.SearchAttributes() {
		if got := have.GetCustomAttributes()[name]; got != typ {
			t.Errorf("search attribute %s: got %s; want %s", name, got, typ)
		}
	}
	query := fmt.Sprintf("%s = 'prod-network' AND %s IS NOT NULL", workflows.WorkspaceKey.GetName(), workflows.PendingSinceKey.GetName())
	if _, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: ns, Query: query}); err != nil {
		t.Errorf("list workflows of %s with %q: %v", ns, query, err)
	}
	if _, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: ns, Query: "NoSuchGatehouseAttribute = 'x'"}); err == nil {
		t.Error("a query on an attribute nobody registered was accepted; the check above proves nothing")
	}
}

// TestSetupWaitsForTemporal: started before Temporal listens, setup --wait
// keeps trying and succeeds once the server is up, instead of failing its
// first try (which would abort `docker compose up` for everything that
// waits on it). Without --wait it fails at once.
func TestSetupWaitsForTemporal(t *testing.T) {
	addr := freeAddr(t)
	core, logs := observer.New(zap.InfoLevel)
	opts := app.Options{TemporalAddr: addr, Namespace: "gatehouse-setup-wait", Logger: zap.New(core)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := app.Setup(ctx, opts); err == nil {
		t.Fatalf("setup without --wait against %s where nothing listens: got nil; want an error", addr)
	}

	done := make(chan error, 1)
	go func() {
		_, err := app.SetupWait(ctx, opts, 90*time.Second)
		done <- err
	}()
	// Only once setup has failed a try does the server start.
	for logs.FilterMessage("temporal not ready for setup yet; retrying").Len() == 0 {
		select {
		case err := <-done:
			t.Fatalf("setup returned %v before Temporal was started", err)
		case <-ctx.Done():
			t.Fatal("setup logged no retry")
		case <-time.After(50 * time.Millisecond):
		}
	}
	srv, err := devserver.Start(ctx, devserver.Options{
		DataDir: t.TempDir(), FrontendAddr: addr, Logger: zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)),
	})
	if err != nil {
		t.Fatalf("start temporal: %v", err)
	}
	defer srv.Stop()
	if err := <-done; err != nil {
		t.Fatalf("setup --wait: got %v; want success once Temporal is up", err)
	}
	c, err := client.DialContext(ctx, client.Options{HostPort: addr, Namespace: opts.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := starter.Retention(ctx, c, opts.Namespace); err != nil || got != app.DefaultRetention {
		t.Errorf("retention: got %s, %v; want %s", got, err, app.DefaultRetention)
	}
}

// refusingAuthorizer denies the calls a client without admin rights is
// refused (on Temporal Cloud, any client): registering the namespace
// "cloud-ns", and changing or adding search attributes to "locked-ns".
type refusingAuthorizer struct{}

func (refusingAuthorizer) Authorize(_ context.Context, _ *authorization.Claims, target *authorization.CallTarget) (authorization.Result, error) {
	deny := (target.Namespace == "cloud-ns" && strings.HasSuffix(target.APIName, "/RegisterNamespace")) ||
		(target.Namespace == "locked-ns" && (strings.HasSuffix(target.APIName, "/UpdateNamespace") || strings.HasSuffix(target.APIName, "/AddSearchAttributes")))
	if deny {
		return authorization.Result{Decision: authorization.DecisionDeny, Reason: "not an admin"}, nil
	}
	return authorization.Result{Decision: authorization.DecisionAllow}, nil
}

// TestSetupExplainsRefusals: when Temporal refuses what setup needs, setup
// stops at once (a retry would not help, so --wait does not retry) and says
// what to do instead: create the namespace in Temporal Cloud, set its
// retention there, or add the listed attributes by hand.
func TestSetupExplainsRefusals(t *testing.T) {
	ts := temporaltest.NewServer(temporaltest.WithT(t), temporaltest.WithBaseServerOptions(temporal.WithAuthorizer(refusingAuthorizer{})))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	core, logs := observer.New(zap.InfoLevel)
	opts := app.Options{TemporalAddr: ts.GetFrontendHostPort(), Logger: zap.New(core)}
	setup := func(ns string, retention time.Duration) error {
		o := opts
		o.Namespace, o.Retention = ns, retention
		_, err := app.SetupWait(ctx, o, 30*time.Second)
		return err
	}
	c, err := client.DialContext(ctx, client.Options{HostPort: ts.GetFrontendHostPort()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := starter.EnsureNamespace(ctx, c, "locked-ns", 48*time.Hour); err != nil {
		t.Fatalf("create locked-ns: %v", err)
	}
	// A namespace just created is unknown to some of Temporal's services for
	// a moment (setup retries that, rightly); wait it out here, so that any
	// retry below is one after a refusal.
	for {
		_, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "locked-ns"})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("locked-ns never became known: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}

	for _, tt := range []struct {
		ns        string
		retention time.Duration
		want      []string
	}{
		{"cloud-ns", 720 * time.Hour, []string{"namespace cloud-ns does not exist and this client may not create it", "create it in the Cloud UI or with tcld"}},
		{"locked-ns", 72 * time.Hour, []string{"set retention of locked-ns to 72h0m0s", "keeps closed runs 48h0m0s", "pass the same --retention"}},
		{"locked-ns", 48 * time.Hour, []string{"add search attributes to locked-ns", "operator rights", workflows.WorkspaceKey.GetName(), workflows.PendingApproversKey.GetName()}},
	} {
		err := setup(tt.ns, tt.retention)
		if err == nil {
			t.Errorf("setup %s --retention %s: got nil; want a refusal", tt.ns, tt.retention)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("setup %s --retention %s: got %q; want it to say %q", tt.ns, tt.retention, err, w)
			}
		}
	}
	if n := logs.FilterMessage("temporal not ready for setup yet; retrying").Len(); n != 0 {
		t.Errorf("setup retried %d times after a refusal; want none: first %v", n, logs.FilterMessage("temporal not ready for setup yet; retrying").All()[0].ContextMap())
	}
	if got, err := starter.Retention(ctx, c, "locked-ns"); err != nil || got != 48*time.Hour {
		t.Errorf("locked-ns retention after the refusals: got %s, %v; want 48h", got, err)
	}
}

// exampleConfig is the tests' config applying with the example apply
// script, as the tests of separate processes run it.
func exampleConfig(t *testing.T) string {
	t.Helper()
	script, err := filepath.Abs("../examples/apply.sh")
	if err != nil {
		t.Fatal(err)
	}
	return renderConfig(t, script, "1h", "http://127.0.0.1:9/unused")
}

// writeConfig writes cfg into a fresh directory and points the apply
// script's log (APPLY_LOG, which the processes a test starts inherit)
// beside it.
func writeConfig(t *testing.T, cfg string) (dir, cfgPath, applyLog string) {
	t.Helper()
	dir = t.TempDir()
	cfgPath = filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	applyLog = filepath.Join(dir, "applied.log")
	t.Setenv("APPLY_LOG", applyLog)
	return dir, cfgPath, applyLog
}

// clusterOptions are the options of Gatehouse processes against ts, with
// the config at cfgPath and their data in dir, once gatehouse setup has
// run on ts's namespace.
func clusterOptions(t *testing.T, ts *temporaltest.TestServer, dir, cfgPath string) app.Options {
	t.Helper()
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
	return opts
}

// inProcess is a Gatehouse process (app.RunWorker, app.RunGateway) run as a
// goroutine of the test until stopped.
type inProcess struct {
	t    *testing.T
	stop context.CancelFunc
	done chan error
	once sync.Once
}

// runInProcess starts run with opts; the test's cleanup stops it within
// 20 s if the test has not.
func runInProcess(t *testing.T, run func(context.Context, app.Options) error, opts app.Options) *inProcess {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	p := &inProcess{t: t, stop: stop, done: make(chan error, 1)}
	go func() { p.done <- run(ctx, opts) }()
	t.Cleanup(func() { p.Stop(20 * time.Second) })
	return p
}

// Stop ends the process, as SIGTERM would, and fails the test unless it
// returns cleanly within the given time. Only the first call does it.
func (p *inProcess) Stop(within time.Duration) {
	p.t.Helper()
	p.once.Do(func() {
		p.stop()
		select {
		case err := <-p.done:
			if err != nil {
				p.t.Errorf("process stopped with %v; want a clean stop", err)
			}
		case <-time.After(within):
			p.t.Fatal("a process did not stop")
		}
	})
}

// waitReady waits until the gateway at url answers /readyz.
func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
