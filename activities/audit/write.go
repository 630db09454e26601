package audit

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// insertEvent skips an event already stored: an activity retried after its
// write committed must not add the event again.
const insertEvent = `INSERT INTO events (` + eventColumns + `)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING`

// upsertRun makes the run's row the state its newest event left it in. The
// WHERE keeps a newer row when an older event arrives late (events are
// ordered by time, then id), so the order writes arrive in never matters.
const upsertRun = `INSERT INTO runs (run_id, workspace, environment, status, requested_by,
	plan_sha256, adds, changes, destroys, replaces, created_at, updated_at, last_action, last_event_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (run_id) DO UPDATE SET
	workspace = excluded.workspace, environment = excluded.environment, status = excluded.status,
	requested_by = excluded.requested_by, plan_sha256 = excluded.plan_sha256, adds = excluded.adds,
	changes = excluded.changes, destroys = excluded.destroys, replaces = excluded.replaces,
	updated_at = excluded.updated_at, last_action = excluded.last_action, last_event_id = excluded.last_event_id
WHERE (excluded.updated_at, excluded.last_event_id) > (runs.updated_at, runs.last_event_id)`

// firstEvent moves a run's creation back to the earliest event seen, which
// the upsert's WHERE may have kept from it.
const firstEvent = `UPDATE runs SET created_at = ? WHERE run_id = ? AND created_at > ?`

// Write stores events. An event whose id is already stored is skipped, so an
// activity retry never duplicates a row. It also keeps the run list: one row
// per run with the state of its newest event and the time of its first. All
// of it is one transaction; an invalid event (see ErrInvalid) fails the
// whole batch before anything is written.
func (s *Store) Write(ctx context.Context, events ...approval.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	args := make([][]any, len(events))
	for i, e := range events {
		if err := validate(e); err != nil {
			return fmt.Errorf("audit: write: %w", err)
		}
		a, err := eventArgs(e)
		if err != nil {
			return fmt.Errorf("audit: write: %w", err)
		}
		args[i] = a
	}
	// Rows are written in id order, and runs in run id order, so that two
	// batches sharing rows lock them in the same order and cannot deadlock.
	order := make([]int, len(events))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(events[a].ID, events[b].ID) })
	runs := latestPerRun(events)

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: write: begin: %w", err)
	}
	defer tx.Rollback() // a no-op once committed
	if err := s.insertEvents(ctx, tx, order, events, args); err != nil {
		return err
	}
	if err := s.upsertRuns(ctx, tx, runs); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: write: commit: %w", err)
	}
	return nil
}

func (s *Store) insertEvents(ctx context.Context, tx *sql.Tx, order []int, events []approval.AuditEvent, args [][]any) error {
	stmt, err := tx.PrepareContext(ctx, s.dialect.bind(insertEvent))
	if err != nil {
		return fmt.Errorf("audit: write: prepare: %w", err)
	}
	defer stmt.Close()
	for _, i := range order {
		if _, err := stmt.ExecContext(ctx, args[i]...); err != nil {
			return fmt.Errorf("audit: write event %q: %w", events[i].ID, err)
		}
	}
	return nil
}

// runUpdate is what a batch says of one run: its newest event and the time
// of its earliest.
type runUpdate struct {
	latest  approval.AuditEvent
	firstAt int64
}

// latestPerRun folds the batch into one update per run, in run id order.
func latestPerRun(events []approval.AuditEvent) []runUpdate {
	byRun := make(map[string]*runUpdate)
	for _, e := range events {
		u, ok := byRun[e.RunID]
		if !ok {
			byRun[e.RunID] = &runUpdate{latest: e, firstAt: e.At.UnixNano()}
			continue
		}
		u.firstAt = min(u.firstAt, e.At.UnixNano())
		if newer(e, u.latest) {
			u.latest = e
		}
	}
	out := make([]runUpdate, 0, len(byRun))
	for _, u := range byRun {
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b runUpdate) int { return cmp.Compare(a.latest.RunID, b.latest.RunID) })
	return out
}

// newer reports whether a comes after b in the trail: later, or at the same
// instant with the greater id, as the runs table's upsert compares them.
func newer(a, b approval.AuditEvent) bool {
	if c := cmp.Compare(a.At.UnixNano(), b.At.UnixNano()); c != 0 {
		return c > 0
	}
	return a.ID > b.ID
}

func (s *Store) upsertRuns(ctx context.Context, tx *sql.Tx, runs []runUpdate) error {
	upsert, err := tx.PrepareContext(ctx, s.dialect.bind(upsertRun))
	if err != nil {
		return fmt.Errorf("audit: write: prepare: %w", err)
	}
	defer upsert.Close()
	first, err := tx.PrepareContext(ctx, s.dialect.bind(firstEvent))
	if err != nil {
		return fmt.Errorf("audit: write: prepare: %w", err)
	}
	defer first.Close()
	for _, u := range runs {
		e, p := u.latest, u.latest.Plan
		if _, err := upsert.ExecContext(ctx, e.RunID, e.Workspace, e.Environment, string(e.StatusAfter),
			string(e.RequestedBy), p.SHA256, p.Adds, p.Changes, p.Destroys, p.Replaces, u.firstAt, e.At.UnixNano(),
			string(e.Action), e.ID); err != nil {
			return fmt.Errorf("audit: write run %q: %w", e.RunID, err)
		}
		if _, err := first.ExecContext(ctx, u.firstAt, e.RunID, u.firstAt); err != nil {
			return fmt.Errorf("audit: write run %q: %w", e.RunID, err)
		}
	}
	return nil
}
