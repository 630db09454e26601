package audit

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// latestVersion is the newest migration's version.
const latestVersion = 2

func dbVersion(t *testing.T, s *Store) int64 {
	t.Helper()
	p, err := newProvider(s.db, s.dialect)
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.GetDBVersion(context.Background())
	if err != nil {
		t.Fatalf("GetDBVersion: %v", err)
	}
	return v
}

func TestMigrateFromEmpty(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		s := newStore(t, b)
		if v := dbVersion(t, s); v != latestVersion {
			t.Fatalf("version = %d, want %d", v, latestVersion)
		}
		if n := count(t, s, "events") + count(t, s, "runs"); n != 0 {
			t.Fatalf("a new store has %d rows", n)
		}
		if s.dialect == sqlite {
			var mode string
			if err := s.db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
				t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
			}
		}
	})
}

// TestMigrateFromPreviousVersion stores an event in a version 1 schema, as a
// store of the previous release would, and has Open take it to the latest:
// the event is kept and its run appears in the runs table the migration
// adds.
func TestMigrateFromPreviousVersion(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.dsn(t)
		db, d, err := connect(ctx, b.driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		p, err := newProvider(db, d)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.UpTo(ctx, 1); err != nil {
			t.Fatalf("UpTo(1): %v", err)
		}
		old := event("e-old", "ws", "run-1", base)
		args, err := eventArgs(old)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, d.bind(insertEvent), args...); err != nil {
			t.Fatalf("insert at version 1: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}

		s := open(t, b, dsn)
		if v := dbVersion(t, s); v != latestVersion {
			t.Fatalf("version = %d, want %d", v, latestVersion)
		}
		page, err := s.Query(ctx, Filter{Workspaces: []string{"ws"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) != 1 || page.Events[0].ID != "e-old" {
			t.Fatalf("after migrating: events %v, want [e-old]", ids(page.Events))
		}
		runs, err := s.Runs(ctx, RunFilter{Workspaces: []string{"ws"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs.Runs) != 1 || runs.Runs[0].RunID != "run-1" || runs.Runs[0].Status != old.StatusAfter ||
			!runs.Runs[0].CreatedAt.Equal(base) {
			t.Fatalf("after migrating: runs %+v, want run-1 %s created at %s", runs.Runs, old.StatusAfter, base)
		}
	})
}

func TestOpenTwice(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		dsn := b.dsn(t)
		first := open(t, b, dsn)
		write(t, first, event("e-1", "ws", "run-1", base))
		// A second store on the same database while the first is open, as
		// a second worker would: migrating again is a no-op.
		second := open(t, b, dsn)
		if v := dbVersion(t, second); v != latestVersion {
			t.Fatalf("version = %d, want %d", v, latestVersion)
		}
		write(t, second, event("e-2", "ws", "run-1", base.Add(time.Second)))
		if n := count(t, first, "events"); n != 2 {
			t.Fatalf("%d events, want 2", n)
		}
	})
}

func TestOpenInvalid(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ driver, dsn string }{
		{"mysql", "x"},
		{DriverSQLite, ""},
		{DriverSQLite, t.TempDir() + "/a.db?mode=memory"},
		{DriverPostgres, ""},
	} {
		if _, err := Open(ctx, c.driver, c.dsn); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(%q, %q) = %v, want ErrInvalid", c.driver, c.dsn, err)
		}
	}
}

// Processes sharing a new SQLite file (a worker and a gateway started
// together) open it at once: every Open migrates or finds it migrated.
func TestConcurrentOpensOfANewSQLiteFile(t *testing.T) {
	for round := 0; round < 5; round++ {
		path := filepath.Join(t.TempDir(), "audit.db")
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := Open(context.Background(), DriverSQLite, path)
				if err == nil {
					err = s.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Errorf("round %d: %v", round, err)
			}
		}
	}
}
