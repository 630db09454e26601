package audit

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/google/go-cmp/cmp"
)

func TestRunsFollowNewestEvent(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		s := newStore(t, b)
		ctx := context.Background()
		at := func(min int) time.Time { return base.Add(time.Duration(min) * time.Minute) }
		step := func(id string, min int, action approval.AuditAction, after approval.Status, sha string) approval.AuditEvent {
			e := event(id, "ws", "run-1", at(min))
			e.Action, e.StatusAfter, e.Plan.SHA256 = action, after, sha
			return e
		}
		get := func() RunRecord {
			t.Helper()
			page, err := s.Runs(ctx, RunFilter{Workspaces: []string{"ws"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Runs) != 1 {
				t.Fatalf("%d runs, want 1", len(page.Runs))
			}
			return page.Runs[0]
		}

		write(t, s, step("e-1", 1, approval.AuditRequested, approval.StatusPendingApproval, "plan-1"))
		write(t, s, step("e-3", 3, approval.AuditApproved, approval.StatusApproved, "plan-2"))
		want := RunRecord{
			RunID: "run-1", Workspace: "ws", Environment: "prod", Status: approval.StatusApproved, RequestedBy: "bob",
			Plan:      approval.PlanSummary{SHA256: "plan-2", Adds: 1, Changes: 2, Destroys: 3, Replaces: 4},
			CreatedAt: at(1), UpdatedAt: at(3), LastAction: approval.AuditApproved,
		}
		if diff := cmp.Diff(want, get()); diff != "" {
			t.Fatalf("after two events (-want +got):\n%s", diff)
		}

		// A retry of an older step arrives late: the run keeps its status.
		write(t, s, step("e-2", 2, approval.AuditChangesRequested, approval.StatusChangesRequested, "plan-1"))
		if diff := cmp.Diff(want, get()); diff != "" {
			t.Fatalf("after a late event (-want +got):\n%s", diff)
		}
		// One older than the first moves the run's creation back, only.
		write(t, s, step("e-0", 0, approval.AuditPlanned, approval.StatusPlanning, "plan-0"))
		want.CreatedAt = at(0)
		if diff := cmp.Diff(want, get()); diff != "" {
			t.Fatalf("after an event older than the first (-want +got):\n%s", diff)
		}
		// At the same instant the greater id is the newer.
		write(t, s, step("e-3a", 3, approval.AuditApplyStarted, approval.StatusApplying, "plan-2"))
		write(t, s, step("e-2z", 3, approval.AuditRevoked, approval.StatusPendingApproval, "plan-2"))
		want.Status, want.LastAction = approval.StatusApplying, approval.AuditApplyStarted
		if diff := cmp.Diff(want, get()); diff != "" {
			t.Fatalf("after events at one instant (-want +got):\n%s", diff)
		}
		// A batch in any order ends the same.
		write(t, s,
			step("e-9", 9, approval.AuditApplied, approval.StatusApplied, "plan-2"),
			step("e-5", 5, approval.AuditApplyFailed, approval.StatusFailed, "plan-2"),
		)
		want.Status, want.LastAction, want.UpdatedAt = approval.StatusApplied, approval.AuditApplied, at(9)
		if diff := cmp.Diff(want, get()); diff != "" {
			t.Fatalf("after a batch (-want +got):\n%s", diff)
		}
	})
}

func TestRunsPagesAndFilters(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		s := newStore(t, b)
		ctx := context.Background()
		var events []approval.AuditEvent
		var want []string // newest created first
		for i := range 250 {
			run := fmt.Sprintf("run-%03d", i)
			// Three runs created at each instant.
			e := event("e-"+run, []string{"ws-a", "ws-b"}[i%2], run, base.Add(time.Duration(i/3)*time.Second))
			e.RequestedBy = approval.UserID([]string{"bob", "dave", "erin"}[i%3])
			if i%5 == 0 {
				e.StatusAfter = approval.StatusRejected
			}
			events = append(events, e)
			want = append([]string{run}, want...)
		}
		// Later events do not move a run in the list.
		for i := 0; i < 250; i += 10 {
			e := events[i]
			e.ID, e.At = e.ID+"-later", base.Add(time.Hour)
			events = append(events, e)
		}
		write(t, s, events...)

		runIDs := func(f RunFilter) []string {
			t.Helper()
			var out []string
			for pages := 0; ; pages++ {
				if pages > 300 {
					t.Fatal("Runs does not end")
				}
				page, err := s.Runs(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if len(page.Runs) > clampLimit(f.Limit) {
					t.Fatalf("%d runs in a page of %d", len(page.Runs), clampLimit(f.Limit))
				}
				for _, r := range page.Runs {
					out = append(out, r.RunID)
				}
				if page.NextCursor == "" {
					return out
				}
				f.Cursor = page.NextCursor
			}
		}
		ab := []string{"ws-a", "ws-b"}
		for _, limit := range []int{0, 1, 40, 250, MaxLimit + 5} {
			if diff := cmp.Diff(want, runIDs(RunFilter{Workspaces: ab, Limit: limit})); diff != "" {
				t.Fatalf("limit %d (-want +got):\n%s", limit, diff)
			}
		}
		page, err := s.Runs(ctx, RunFilter{Workspaces: ab})
		if err != nil || len(page.Runs) != DefaultLimit {
			t.Fatalf("default limit: %d runs, %v; want %d", len(page.Runs), err, DefaultLimit)
		}

		pick := func(keep func(i int) bool) []string {
			var out []string
			for i := 249; i >= 0; i-- {
				if keep(i) {
					out = append(out, fmt.Sprintf("run-%03d", i))
				}
			}
			return out
		}
		for _, c := range []struct {
			name string
			f    RunFilter
			want []string
		}{
			{"empty allow-list", RunFilter{Workspace: "ws-a"}, nil},
			{"allow-list", RunFilter{Workspaces: []string{"ws-b"}}, pick(func(i int) bool { return i%2 == 1 })},
			{"workspace", RunFilter{Workspaces: ab, Workspace: "ws-a"}, pick(func(i int) bool { return i%2 == 0 })},
			{"workspace outside the allow-list", RunFilter{Workspaces: []string{"ws-b"}, Workspace: "ws-a"}, nil},
			{"status", RunFilter{Workspaces: ab, Status: approval.StatusRejected, Limit: 7}, pick(func(i int) bool { return i%5 == 0 })},
			{"requested by", RunFilter{Workspaces: ab, RequestedBy: "dave", Limit: 9}, pick(func(i int) bool { return i%3 == 1 })},
			{"together", RunFilter{Workspaces: ab, Workspace: "ws-b", Status: approval.StatusApproved, RequestedBy: "bob"}, pick(func(i int) bool { return i%2 == 1 && i%5 != 0 && i%3 == 0 })},
		} {
			if diff := cmp.Diff(c.want, runIDs(c.f), cmpEmpty); diff != "" {
				t.Errorf("%s (-want +got):\n%s", c.name, diff)
			}
		}

		for _, cursor := range []string{"***", encodeCursor(eventCursor, 1, "run-1")} {
			if _, err := s.Runs(ctx, RunFilter{Workspaces: ab, Cursor: cursor}); !errors.Is(err, ErrInvalid) {
				t.Errorf("cursor %q: Runs = %v, want ErrInvalid", cursor, err)
			}
		}
	})
}

func TestCountRunsByStatus(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		s := newStore(t, b)
		for i, st := range []approval.Status{approval.StatusPendingApproval, approval.StatusApplied, approval.StatusApplied, approval.StatusRejected} {
			e := event(fmt.Sprintf("e-%d", i), "ws", fmt.Sprintf("run-%d", i), base.Add(time.Duration(i)*time.Minute))
			e.StatusAfter = st
			write(t, s, e)
		}
		got, err := s.CountRuns(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := map[approval.Status]int{approval.StatusPendingApproval: 1, approval.StatusApplied: 2, approval.StatusRejected: 1}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("counts (-want +got):\n%s", diff)
		}
	})
}
