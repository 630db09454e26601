package tests

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	postgresplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	"go.temporal.io/server/tools/common/schema"
	sqltool "go.temporal.io/server/tools/sql"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/devserver"
	"github.com/gatehouse-dev/gatehouse/internal/pgtest"
)

// processEnv carries a Gatehouse process's role and options from the test
// that starts it (GATEHOUSE_ keeps it out of applies' environments).
const processEnv = "GATEHOUSE_TEST_PROCESS"

// testProcess is what processEnv holds.
type testProcess struct {
	Role    string // "worker" or "gateway"
	Options app.Options
}

// TestGatehouseProcess is not a test: it is a worker or gateway process of
// TestTemporalOnPostgres, the test binary run again with its role in the
// environment, until SIGTERM, as `gatehouse worker` and `gatehouse gateway`
// run.
func TestGatehouseProcess(t *testing.T) {
	raw := os.Getenv(processEnv)
	if raw == "" {
		t.Skip("a worker or gateway process of TestTemporalOnPostgres")
	}
	var p testProcess
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatal(err)
	}
	p.Options.Logger = zap.Must(zap.NewDevelopment())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	run := app.RunWorker
	if p.Role == "gateway" {
		run = app.RunGateway
	}
	if err := run(ctx, p.Options); err != nil {
		t.Fatal(err)
	}
}

// startProcess starts a Gatehouse process; its output goes to name.log in
// dir and into the test's log when the test fails.
func startProcess(t *testing.T, dir, name string, p testProcess) *workerProc {
	t.Helper()
	p.Options.Logger = nil
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	w := &workerProc{done: make(chan error, 1), log: filepath.Join(dir, name+".log")}
	out, err := os.Create(w.log)
	if err != nil {
		t.Fatal(err)
	}
	w.cmd = exec.Command(os.Args[0], "-test.run=^TestGatehouseProcess$", "-test.v")
	w.cmd.Env = append(os.Environ(), processEnv+"="+string(raw))
	w.cmd.Stdout, w.cmd.Stderr = out, out
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { w.done <- w.cmd.Wait(); out.Close() }()
	t.Cleanup(func() {
		w.cmd.Process.Kill() //nolint:errcheck // gone already is fine
		<-w.done
		if t.Failed() {
			data, _ := os.ReadFile(w.log)
			t.Logf("%s output:\n%s", name, data)
		}
	})
	return w
}

// temporalDatabases creates a Temporal and a visibility database of the
// test's own on the PostgreSQL server base names, dropped when the test
// ends, and sets up their schemas with the server module's own SQL tool
// (what `temporal-sql-tool setup-schema -v 0.0` and `update-schema -d
// schema/postgresql/v12/...` run).
func temporalDatabases(t *testing.T, base string) devserver.Postgres {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	pw, _ := u.User.Password()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	suffix := hex.EncodeToString(b)
	pg := devserver.Postgres{
		Addr: u.Host, User: u.User.Username(), Password: pw,
		Database: "gh_temporal_" + suffix, VisibilityDatabase: "gh_temporal_vis_" + suffix,
		ConnectAttributes: map[string]string{"sslmode": "disable"},
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	for db, schemaName := range map[string]string{pg.Database: "postgresql/v12/temporal", pg.VisibilityDatabase: "postgresql/v12/visibility"} {
		if _, err := admin.Exec("CREATE DATABASE " + db); err != nil {
			t.Fatalf("create database %s (the role needs CREATEDB; .ci/postgres.sh grants it): %v", db, err)
		}
		t.Cleanup(func() {
			if _, err := admin.Exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)"); err != nil {
				t.Errorf("drop database %s: %v", db, err)
			}
		})
		conn, err := sqltool.NewConnection(&config.SQL{
			PluginName: postgresplugin.PluginName, ConnectAddr: pg.Addr, ConnectProtocol: "tcp",
			User: pg.User, Password: pg.Password, DatabaseName: db, ConnectAttributes: pg.ConnectAttributes,
		}, log.NewNoopLogger())
		if err != nil {
			t.Fatalf("connect to %s: %v", db, err)
		}
		err = schema.NewSetupSchemaTask(conn, &schema.SetupConfig{InitialVersion: "0.0"}, log.NewNoopLogger()).Run()
		if err == nil {
			err = schema.NewUpdateSchemaTask(conn, &schema.UpdateConfig{DBName: db, SchemaName: schemaName}, log.NewNoopLogger()).Run()
		}
		conn.Close()
		if err != nil {
			t.Fatalf("set up schema %s in %s: %v", schemaName, db, err)
		}
	}
	return pg
}

// TestTemporalOnPostgres is the deployment as production runs it: Temporal
// persisted in PostgreSQL (its schema set up by Temporal's own tool),
// gatehouse setup, and a worker and a gateway each in a process of its own,
// the audit trail in PostgreSQL too. A run needs two approvals; between
// them the worker process is killed (SIGKILL) while the run waits, a new
// one started, and the run goes on to applied, the apply run once.
func TestTemporalOnPostgres(t *testing.T) {
	base := os.Getenv(pgtest.Env)
	if base == "" {
		t.Skipf("%s is empty: set it to a PostgreSQL DSN whose role may CREATE DATABASE (bash .ci/postgres.sh starts Debian's PostgreSQL and prints one) to run Temporal on PostgreSQL", pgtest.Env)
	}
	pg := temporalDatabases(t, base)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{
		FrontendAddr: "127.0.0.1:0", Postgres: &pg,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)),
	})
	if err != nil {
		t.Fatalf("start temporal on postgres: %v", err)
	}
	t.Cleanup(func() { srv.Stop() }) //nolint:errcheck // the test is over

	dir, cfgPath, applyLog := writeConfig(t, exampleConfig(t))
	// Both processes inherit it: the audit trail in a schema of its own.
	t.Setenv(app.DatabaseEnv, pgtest.Schema(t, base))
	opts := app.Options{
		ConfigPath: cfgPath, DataDir: filepath.Join(dir, "data"),
		TemporalAddr: srv.FrontendAddr(), Namespace: "gatehouse-pg",
		HTTPAddr: freeAddr(t), SigningKeys: testSigningKey, StopTimeout: time.Minute,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	}
	// A fresh cluster has no namespace yet: setup creates it.
	if change, err := app.SetupWait(ctx, opts, 0); err != nil || !change.Created {
		t.Fatalf("setup: %+v, %v; want the namespace created", change, err)
	}

	gw := startProcess(t, dir, "gateway", testProcess{Role: "gateway", Options: opts})
	first := startProcess(t, dir, "worker-1", testProcess{Role: "worker", Options: opts})
	s := &stack{t: t, url: "http://" + opts.HTTPAddr, applyLog: applyLog}
	waitReady(t, s.url)

	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
	if got := s.get(run); got.Status != approval.StatusPendingApproval {
		t.Fatalf("after one approval the run is %s; want %s", got.Status, approval.StatusPendingApproval)
	}
	// The run waits for its second approval: the worker dies without a
	// word, and another takes over.
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := first.wait(t, 30*time.Second); err == nil {
		t.Fatal("the killed worker exited cleanly")
	}
	second := startProcess(t, dir, "worker-2", testProcess{Role: "worker", Options: opts})
	s.decide(run, "approve", "t-carol", nil, http.StatusOK)
	s.waitFor(run, approval.StatusApplied)
	if lines := s.applied(); len(lines) != 1 {
		t.Errorf("apply ran %d times; want once", len(lines))
	}
	events := s.trail(run, "t-victor", approval.AuditApplied)
	approvals := 0
	for _, e := range events {
		if e.Action == approval.AuditApproved {
			approvals++
		}
	}
	if approvals != 2 {
		t.Errorf("trail %v has %d approvals; want 2, one before and one after the worker was killed", actionsOf(events), approvals)
	}

	// And Temporal did keep it all in PostgreSQL.
	temporalURL, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	temporalURL.Path = "/" + pg.Database
	db, err := sql.Open("pgx", temporalURL.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var executions int
	if err := db.QueryRow("SELECT count(*) FROM executions WHERE namespace_id = (SELECT id FROM namespaces WHERE name = $1)", opts.Namespace).Scan(&executions); err != nil || executions == 0 {
		t.Errorf("executions of namespace %s in %s: %d, %v; want the run's", opts.Namespace, pg.Database, executions, err)
	}

	for _, p := range []*workerProc{second, gw} {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := p.wait(t, 30*time.Second); err != nil {
			t.Errorf("%s stopped with %v; want a clean stop", p.log, err)
		}
	}
}
