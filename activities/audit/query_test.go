package audit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/google/go-cmp/cmp"
)

// filterEvents are events in three workspaces, by two actors, with several
// actions, a minute apart: e-0 is the oldest.
func filterEvents() []approval.AuditEvent {
	var out []approval.AuditEvent
	for i := range 9 {
		e := event(fmt.Sprintf("e-%d", i), []string{"ws-a", "ws-b", "ws-c"}[i%3], fmt.Sprintf("run-%d", i%2), base.Add(time.Duration(i)*time.Minute))
		if i%4 == 0 {
			e.Actor.ID = "carol"
		}
		if i%2 == 0 {
			e.Action = approval.AuditRejected
		}
		out = append(out, e)
	}
	return out
}

func TestQueryFilters(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		s := newStore(t, b)
		write(t, s, filterEvents()...)
		ab := []string{"ws-a", "ws-b"}
		for _, c := range []struct {
			name string
			f    Filter
			want []string
		}{
			{"allow-list", Filter{Workspaces: ab}, []string{"e-7", "e-6", "e-4", "e-3", "e-1", "e-0"}},
			{"every workspace", Filter{Workspaces: []string{"ws-a", "ws-b", "ws-c"}}, []string{"e-8", "e-7", "e-6", "e-5", "e-4", "e-3", "e-2", "e-1", "e-0"}},
			{"empty allow-list", Filter{}, nil},
			{"empty allow-list with workspace", Filter{Workspaces: []string{}, Workspace: "ws-a"}, nil},
			{"workspace", Filter{Workspaces: ab, Workspace: "ws-b"}, []string{"e-7", "e-4", "e-1"}},
			{"workspace outside the allow-list", Filter{Workspaces: ab, Workspace: "ws-c"}, nil},
			{"run", Filter{Workspaces: ab, RunID: "run-1"}, []string{"e-7", "e-3", "e-1"}},
			{"actor", Filter{Workspaces: ab, Actor: "carol"}, []string{"e-4", "e-0"}},
			{"action", Filter{Workspaces: ab, Action: approval.AuditRejected}, []string{"e-6", "e-4", "e-0"}},
			{"since", Filter{Workspaces: ab, Since: base.Add(4 * time.Minute)}, []string{"e-7", "e-6", "e-4"}},
			{"until", Filter{Workspaces: ab, Until: base.Add(4 * time.Minute)}, []string{"e-3", "e-1", "e-0"}},
			{"since and until", Filter{Workspaces: ab, Since: base.Add(time.Minute), Until: base.Add(6 * time.Minute)}, []string{"e-4", "e-3", "e-1"}},
			{"bounds far out", Filter{Workspaces: ab, Since: time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), Until: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}, []string{"e-7", "e-6", "e-4", "e-3", "e-1", "e-0"}},
			{"all together", Filter{Workspaces: ab, Workspace: "ws-a", RunID: "run-0", Actor: "carol", Action: approval.AuditRejected, Since: base, Until: base.Add(time.Hour)}, []string{"e-0"}},
		} {
			page, err := s.Query(context.Background(), c.f)
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if diff := cmp.Diff(c.want, ids(page.Events), cmpEmpty); diff != "" {
				t.Errorf("%s (-want +got):\n%s", c.name, diff)
			}
			if page.NextCursor != "" {
				t.Errorf("%s: a single page has a next cursor", c.name)
			}
			var exported []string
			if err := s.Export(context.Background(), c.f, func(e approval.AuditEvent) error {
				exported = append(exported, e.ID)
				return nil
			}); err != nil {
				t.Fatalf("%s: Export: %v", c.name, err)
			}
			if diff := cmp.Diff(c.want, exported, cmpEmpty); diff != "" {
				t.Errorf("%s: Export (-want +got):\n%s", c.name, diff)
			}
		}
	})
}

// cmpEmpty equates nil and empty slices.
var cmpEmpty = cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) })

func TestQueryLimit(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		s := newStore(t, b)
		var events []approval.AuditEvent
		for i := range MaxLimit + 50 {
			events = append(events, event(fmt.Sprintf("e-%04d", i), "ws", "run-1", base.Add(time.Duration(i)*time.Millisecond)))
		}
		write(t, s, events...)
		for _, c := range []struct{ limit, want int }{{0, DefaultLimit}, {-3, DefaultLimit}, {7, 7}, {MaxLimit, MaxLimit}, {MaxLimit + 1, MaxLimit}, {1 << 30, MaxLimit}} {
			page, err := s.Query(context.Background(), Filter{Workspaces: []string{"ws"}, Limit: c.limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Events) != c.want || page.NextCursor == "" {
				t.Errorf("Limit %d: %d events (next %q), want %d and a next page", c.limit, len(page.Events), page.NextCursor, c.want)
			}
		}
		// Export has no default limit, and no maximum.
		for _, c := range []struct{ limit, want int }{{0, len(events)}, {3, 3}, {MaxLimit + 20, MaxLimit + 20}} {
			n := 0
			if err := s.Export(context.Background(), Filter{Workspaces: []string{"ws"}, Limit: c.limit}, func(approval.AuditEvent) error {
				n++
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if n != c.want {
				t.Errorf("Export with Limit %d: %d events, want %d", c.limit, n, c.want)
			}
		}
	})
}

// TestQueryPages pages through 250 events, five at each instant so that
// pages end between events with the same time: every event comes once, in
// order.
func TestQueryPages(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		s := newStore(t, b)
		var want []string
		var events []approval.AuditEvent
		for i := range 250 {
			// Ids do not sort like their times, so the tie-break on id
			// is what orders events at one instant.
			id := fmt.Sprintf("e-%03d", (i*37)%250)
			e := event(id, []string{"ws-a", "ws-b"}[i%2], "run-1", base.Add(time.Duration(i/5)*time.Nanosecond))
			events = append(events, e)
		}
		write(t, s, events...)
		slices.SortFunc(events, func(a, b approval.AuditEvent) int {
			if newer(a, b) {
				return -1
			}
			return 1
		})
		want = ids(events)
		for _, limit := range []int{1, 7, 30, 50, 249, 250} {
			var got []string
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > 250 {
					t.Fatalf("limit %d: does not end", limit)
				}
				page, err := s.Query(context.Background(), Filter{Workspaces: []string{"ws-a", "ws-b"}, Limit: limit, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ids(page.Events)...)
				if page.NextCursor == "" {
					break
				}
				cursor = page.NextCursor
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("limit %d: pages (-want +got):\n%s", limit, diff)
			}
		}
		// A cursor carries over to Export, which resumes after it.
		page, err := s.Query(context.Background(), Filter{Workspaces: []string{"ws-a", "ws-b"}, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		if err := s.Export(context.Background(), Filter{Workspaces: []string{"ws-a", "ws-b"}, Cursor: page.NextCursor}, func(e approval.AuditEvent) error {
			if e.ID != want[100+n] {
				return fmt.Errorf("event %d is %s, want %s", 100+n, e.ID, want[100+n])
			}
			n++
			return nil
		}); err != nil || n != 150 {
			t.Fatalf("Export after a cursor: %d events, %v; want 150", n, err)
		}
	})
}

func TestQueryInvalid(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		s := newStore(t, b)
		write(t, s, event("e-1", "ws", "run-1", base))
		enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
		for name, f := range map[string]Filter{
			"not base64":     {Cursor: "%%%"},
			"padded base64":  {Cursor: base64.URLEncoding.EncodeToString([]byte("e1:1:xy"))},
			"no separators":  {Cursor: enc("garbage")},
			"no id":          {Cursor: enc("e1:5:")},
			"bad time":       {Cursor: enc("e1:soon:e-1")},
			"runs cursor":    {Cursor: encodeCursor(runCursor, 5, "run-1")},
			"other version":  {Cursor: enc("e2:5:e-1")},
			"unknown action": {Action: "exploded"},
		} {
			f.Workspaces = []string{"ws"}
			if _, err := s.Query(context.Background(), f); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: Query = %v, want ErrInvalid", name, err)
			}
			if err := s.Export(context.Background(), f, func(approval.AuditEvent) error { return nil }); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: Export = %v, want ErrInvalid", name, err)
			}
			// Even with nothing to read, a bad request is refused.
			f.Workspaces = nil
			if _, err := s.Query(context.Background(), f); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s: Query without workspaces = %v, want ErrInvalid", name, err)
			}
		}
		// An id with ':' survives its cursor.
		write(t, s, event("a:b:c", "ws", "run-1", base), event("a:b:b", "ws", "run-1", base))
		page, err := s.Query(context.Background(), Filter{Workspaces: []string{"ws"}, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		page, err = s.Query(context.Background(), Filter{Workspaces: []string{"ws"}, Limit: 2, Cursor: page.NextCursor})
		if err != nil || len(page.Events) != 1 || page.Events[0].ID != "a:b:b" {
			t.Fatalf("after a cursor on \"a:b:c\": %v, %v; want [a:b:b]", ids(page.Events), err)
		}
	})
}

// TestExportStops has fn fail on the third event: Export stops there and
// returns fn's error.
func TestExportStops(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		s := newStore(t, b)
		var events []approval.AuditEvent
		for i := range 500 {
			events = append(events, event(fmt.Sprintf("e-%03d", i), "ws", "run-1", base.Add(time.Duration(i)*time.Second)))
		}
		write(t, s, events...)
		stop := errors.New("disk full")
		calls := 0
		err := s.Export(context.Background(), Filter{Workspaces: []string{"ws"}}, func(approval.AuditEvent) error {
			calls++
			if calls == 3 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || calls != 3 {
			t.Fatalf("Export = %v after %d calls, want %v after 3", err, calls, stop)
		}
		// And a cancelled context stops it too.
		ctx, cancel := context.WithCancel(context.Background())
		calls = 0
		err = s.Export(ctx, Filter{Workspaces: []string{"ws"}}, func(approval.AuditEvent) error {
			calls++
			if calls == 2 {
				cancel()
			}
			return nil
		})
		if err == nil || calls == len(events) {
			t.Fatalf("Export after cancel = %v after %d calls, want an error before the end", err, calls)
		}
	})
}
