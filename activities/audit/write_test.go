package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/google/go-cmp/cmp"
)

func TestWriteRoundTrip(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		s := newStore(t, b)
		// In another zone and with a monotonic reading: stored as UTC.
		want := event("e-1", "ws", "run-1", time.Now().In(time.FixedZone("x", 3600)))
		sparse := approval.AuditEvent{ID: "e-0", At: base, Action: approval.AuditRequested, Workspace: "ws", RunID: "run-1"}
		write(t, s, want, sparse)
		page, err := s.Query(context.Background(), Filter{Workspaces: []string{"ws"}})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]approval.AuditEvent{want, sparse}, page.Events); diff != "" {
			t.Fatalf("read back (-wrote +read):\n%s", diff)
		}
		if page.Events[0].At.Location() != time.UTC {
			t.Errorf("At is in %v, want UTC", page.Events[0].At.Location())
		}
	})
}

func TestWriteIdempotent(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		s := newStore(t, b)
		e := event("e-1", "ws", "run-1", base)
		write(t, s, e)
		// The activity retried: the same event again, alone and in a batch.
		write(t, s, e)
		write(t, s, e, event("e-2", "ws", "run-1", base.Add(time.Second)), e)
		if n := count(t, s, "events"); n != 2 {
			t.Fatalf("%d events, want 2", n)
		}
		if n := count(t, s, "runs"); n != 1 {
			t.Fatalf("%d runs, want 1", n)
		}
	})
}

func TestWriteConcurrent(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		s := newStore(t, b)
		const writers, shared = 8, 20
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				for i := range shared {
					// Every writer writes the shared events (a retry racing
					// the first attempt) and one of its own, in batches of
					// two touching the same runs.
					own := event(fmt.Sprintf("own-%d-%d", w, i), "ws", fmt.Sprintf("run-%d", i%3), base.Add(time.Duration(w)*time.Minute))
					sharedEvent := event(fmt.Sprintf("shared-%d", i), "ws", fmt.Sprintf("run-%d", i%3), base.Add(time.Duration(i)*time.Second))
					if err := s.Write(context.Background(), sharedEvent, own); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent Write: %v", err)
		}
		if n, want := count(t, s, "events"), shared+writers*shared; n != want {
			t.Fatalf("%d events, want %d", n, want)
		}
		if n := count(t, s, "runs"); n != 3 {
			t.Fatalf("%d runs, want 3", n)
		}
	})
}

func TestWriteInvalidWritesNothing(t *testing.T) {
	good := event("e-1", "ws", "run-1", base)
	for name, bad := range map[string]func(*approval.AuditEvent){
		"no id":        func(e *approval.AuditEvent) { e.ID = "" },
		"no time":      func(e *approval.AuditEvent) { e.At = time.Time{} },
		"out of range": func(e *approval.AuditEvent) { e.At = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) },
		"no workspace": func(e *approval.AuditEvent) { e.Workspace = "" },
		"no run":       func(e *approval.AuditEvent) { e.RunID = "" },
		"no action":    func(e *approval.AuditEvent) { e.Action = "" },
		"NUL":          func(e *approval.AuditEvent) { e.Comment = "a\x00b" },
		"not UTF-8":    func(e *approval.AuditEvent) { e.ReasonIDs = []string{"\xff"} },
	} {
		t.Run(name, func(t *testing.T) {
			eachDB(t, func(t *testing.T, b backend) {
				s := newStore(t, b)
				e := event("e-2", "ws", "run-2", base)
				bad(&e)
				if err := s.Write(context.Background(), good, e); !errors.Is(err, ErrInvalid) {
					t.Fatalf("Write = %v, want ErrInvalid", err)
				}
				if n := count(t, s, "events") + count(t, s, "runs"); n != 0 {
					t.Fatalf("a failed batch left %d rows", n)
				}
			})
		})
	}
}

// TestWriteAtomic fails a batch in the database, after its events are
// inserted: the transaction takes them back.
func TestWriteAtomic(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		s := newStore(t, b)
		if _, err := s.db.Exec("DROP TABLE runs"); err != nil {
			t.Fatal(err)
		}
		if err := s.Write(context.Background(), event("e-1", "ws", "run-1", base)); err == nil {
			t.Fatal("Write without a runs table succeeded")
		}
		if n := count(t, s, "events"); n != 0 {
			t.Fatalf("a failed batch left %d events", n)
		}
	})
}

func BenchmarkWrite(b *testing.B) {
	s := open(b, backend{driver: DriverSQLite}, b.TempDir()+"/audit.db")
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if err := s.Write(ctx, event(fmt.Sprintf("e-%d", i), "ws", fmt.Sprintf("run-%d", i%50), base.Add(time.Duration(i)))); err != nil {
			b.Fatal(err)
		}
	}
}
