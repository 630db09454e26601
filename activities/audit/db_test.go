package audit

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/internal/pgtest"
)

// postgresEnv names the variable holding the DSN of a PostgreSQL database
// the tests may create schemas in (.ci/postgres.sh prints one).
const postgresEnv = pgtest.Env

// backend is a database the suite runs against. dsn returns a DSN of an
// empty database of the test's own.
type backend struct {
	driver string
	dsn    func(t *testing.T) string
}

// eachDB runs fn against SQLite, and against PostgreSQL when postgresEnv
// holds a DSN.
func eachDB(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		fn(t, backend{driver: DriverSQLite, dsn: func(t *testing.T) string {
			// A directory that does not exist yet: Open creates it.
			return filepath.Join(t.TempDir(), "trail", "audit.db")
		}})
	})
	t.Run("postgres", func(t *testing.T) {
		base := os.Getenv(postgresEnv)
		if base == "" {
			t.Skipf("%s is empty: set it to a PostgreSQL DSN (bash .ci/postgres.sh prints one) to run this suite against PostgreSQL", postgresEnv)
		}
		fn(t, backend{driver: DriverPostgres, dsn: func(t *testing.T) string { return pgtest.Schema(t, base) }})
	})
}

// open opens a store on dsn, closed when the test ends.
func open(t testing.TB, b backend, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), b.driver, dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// newStore opens a store on an empty database of the test's own.
func newStore(t *testing.T, b backend) *Store {
	t.Helper()
	return open(t, b, b.dsn(t))
}

// count counts the rows of a table.
func count(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// base is the instant the tests' events are at, give or take.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

// event returns a complete event: every field set, so a round trip that
// drops one shows.
func event(id, workspace, run string, at time.Time) approval.AuditEvent {
	return approval.AuditEvent{
		ID: id, At: at,
		Actor:     approval.AuditActor{ID: "alice", Email: "alice@example.com", Source: approval.SourceSSO, Channel: approval.ChannelUI},
		Action:    approval.AuditApproved,
		Workspace: workspace, Environment: "prod", RunID: run,
		ReasonIDs: []string{"r-1", "r-2"},
		Plan: approval.PlanSummary{
			SHA256: "ab12", Adds: 1, Changes: 2, Destroys: 3, Replaces: 4, Forgets: 5, Imports: 6, Moves: 7,
			Invocations: 8, ResourceCount: 9, ChangesDigest: "cd34",
		},
		Comment: "looks good", ResponseSeconds: 12.5, ConfigVersion: "cfg-7", WorkflowVersion: "wf-3",
		StatusBefore: approval.StatusPendingApproval, StatusAfter: approval.StatusApproved,
		Detail: "two of two", RequestedBy: "bob",
	}
}

func write(t testing.TB, s *Store, events ...approval.AuditEvent) {
	t.Helper()
	if err := s.Write(context.Background(), events...); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func ids(events []approval.AuditEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}
