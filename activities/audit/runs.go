package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// RunRecord is a run as its audit trail last left it.
type RunRecord struct {
	RunID       string
	Workspace   string
	Environment string
	// Status is the status after the run's newest event.
	Status      approval.Status
	RequestedBy approval.UserID
	// Plan has the hash and the adds, changes, destroys and replaces of the
	// newest event's plan; the other counts are in the events.
	Plan approval.PlanSummary
	// CreatedAt is the time of the run's first event, UpdatedAt of its newest.
	CreatedAt, UpdatedAt time.Time
	// LastAction is the action of the run's newest event.
	LastAction approval.AuditAction
}

// RunFilter selects runs. Every set field narrows the selection.
type RunFilter struct {
	// Workspaces are the workspaces the caller may read. Required: an empty
	// list matches nothing, never everything.
	Workspaces  []string
	Workspace   string
	Status      approval.Status
	RequestedBy approval.UserID
	// Limit is a page's size: DefaultLimit when zero, at most MaxLimit.
	Limit int
	// Cursor continues from a RunPage's NextCursor.
	Cursor string
}

// RunPage is one page of runs, newest created first.
type RunPage struct {
	Runs []RunRecord
	// NextCursor continues with the next page; "" on the last.
	NextCursor string
}

// Runs lists the matching runs, newest created first: the run list for runs
// whose Temporal history is gone, and past Temporal visibility's page limit.
// A malformed cursor is an error wrapping ErrInvalid.
//
// A run's CreatedAt moves back if an event older than its first arrives
// late; a listing paged meanwhile may then show that run twice or miss it.
func (s *Store) Runs(ctx context.Context, f RunFilter) (RunPage, error) {
	limit := clampLimit(f.Limit)
	var w where
	w.addIn("workspace", f.Workspaces)
	if f.Workspace != "" {
		w.add("workspace = ?", f.Workspace)
	}
	if f.Status != "" {
		w.add("status = ?", string(f.Status))
	}
	if f.RequestedBy != "" {
		w.add("requested_by = ?", string(f.RequestedBy))
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(runCursor, f.Cursor)
		if err != nil {
			return RunPage{}, fmt.Errorf("audit: runs: %w", err)
		}
		w.add("(created_at, run_id) < (?, ?)", at, id)
	}
	if len(f.Workspaces) == 0 {
		return RunPage{}, nil
	}
	query := `SELECT run_id, workspace, environment, status, requested_by, plan_sha256, adds, changes, destroys,
	replaces, created_at, updated_at, last_action FROM runs` + w.String() +
		" ORDER BY created_at DESC, run_id DESC LIMIT ?"
	// One row past the page says whether there is another.
	rows, err := s.db.QueryContext(ctx, s.dialect.bind(query), append(w.args, limit+1)...)
	if err != nil {
		return RunPage{}, fmt.Errorf("audit: runs: %w", err)
	}
	defer rows.Close()
	var page RunPage
	for rows.Next() {
		var (
			r                         RunRecord
			status, requester, action string
			created, updated          int64
		)
		if err := rows.Scan(&r.RunID, &r.Workspace, &r.Environment, &status, &requester, &r.Plan.SHA256,
			&r.Plan.Adds, &r.Plan.Changes, &r.Plan.Destroys, &r.Plan.Replaces, &created, &updated, &action); err != nil {
			return RunPage{}, fmt.Errorf("audit: runs: scan: %w", err)
		}
		r.Status, r.RequestedBy, r.LastAction = approval.Status(status), approval.UserID(requester), approval.AuditAction(action)
		r.CreatedAt, r.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
		page.Runs = append(page.Runs, r)
	}
	if err := rows.Err(); err != nil {
		return RunPage{}, fmt.Errorf("audit: runs: %w", err)
	}
	if len(page.Runs) > limit {
		page.Runs = page.Runs[:limit]
		last := page.Runs[limit-1]
		page.NextCursor = encodeCursor(runCursor, last.CreatedAt.UnixNano(), last.RunID)
	}
	return page, nil
}

// CountRuns counts the trail's runs by status (every workspace): the gauge
// of runs by status that metrics report.
func (s *Store) CountRuns(ctx context.Context) (map[approval.Status]int, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT status, COUNT(*) FROM runs GROUP BY status")
	if err != nil {
		return nil, fmt.Errorf("audit: count runs: %w", err)
	}
	defer rows.Close()
	out := map[approval.Status]int{}
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("audit: count runs: scan: %w", err)
		}
		out[approval.Status(status)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: count runs: %w", err)
	}
	return out, nil
}
