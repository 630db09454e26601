package audit

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// Filter selects events. Every set field narrows the selection.
type Filter struct {
	// Workspaces are the workspaces the caller may read. Required: an empty
	// list matches nothing, never everything.
	Workspaces []string
	Workspace  string
	RunID      string
	// Actor matches the actor's id.
	Actor  approval.UserID
	Action approval.AuditAction
	// Since is inclusive, Until exclusive; zero is unbounded.
	Since, Until time.Time
	// Limit is a page's size: DefaultLimit when zero, at most MaxLimit.
	// Export streams every match unless Limit is positive.
	Limit int
	// Cursor continues from a Page's NextCursor.
	Cursor string
}

// Page is one page of events, newest first.
type Page struct {
	Events []approval.AuditEvent
	// NextCursor continues with the next page; "" on the last.
	NextCursor string
}

// Query returns a page of the matching events, newest first. A malformed
// cursor or an unknown action is an error wrapping ErrInvalid.
func (s *Store) Query(ctx context.Context, f Filter) (Page, error) {
	limit := clampLimit(f.Limit)
	// One row past the page says whether there is another.
	query, args, err := s.eventsQuery(f, limit+1)
	if err != nil {
		return Page{}, fmt.Errorf("audit: query: %w", err)
	}
	if len(f.Workspaces) == 0 {
		return Page{}, nil
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return Page{}, fmt.Errorf("audit: query: %w", err)
	}
	defer rows.Close()
	var page Page
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return Page{}, fmt.Errorf("audit: query: %w", err)
		}
		page.Events = append(page.Events, e)
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("audit: query: %w", err)
	}
	if len(page.Events) > limit {
		page.Events = page.Events[:limit]
		last := page.Events[limit-1]
		page.NextCursor = encodeCursor(eventCursor, last.At.UnixNano(), last.ID)
	}
	return page, nil
}

// Export streams every matching event, newest first, to fn, one row at a
// time: the trail is never held in memory. It stops at fn's first error and
// returns it, wrapped.
func (s *Store) Export(ctx context.Context, f Filter, fn func(approval.AuditEvent) error) error {
	query, args, err := s.eventsQuery(f, max(f.Limit, 0))
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	if len(f.Workspaces) == 0 {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		// database/sql notices a cancelled context only when it gets round
		// to it; a client gone mid-export stops it at the next row.
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
		e, err := scanEvent(rows)
		if err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
		if err := fn(e); err != nil {
			return fmt.Errorf("audit: export: event %q: %w", e.ID, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	return nil
}

// eventsQuery is the SELECT of the filter's events, newest first; limit 0
// is none.
func (s *Store) eventsQuery(f Filter, limit int) (string, []any, error) {
	var w where
	w.addIn("workspace", f.Workspaces)
	if f.Workspace != "" {
		w.add("workspace = ?", f.Workspace)
	}
	if f.RunID != "" {
		w.add("run_id = ?", f.RunID)
	}
	if f.Actor != "" {
		w.add("actor_id = ?", string(f.Actor))
	}
	if f.Action != "" {
		if !slices.Contains(approval.AuditActions, f.Action) {
			return "", nil, fmt.Errorf("unknown action %q: %w", f.Action, ErrInvalid)
		}
		w.add("action = ?", string(f.Action))
	}
	if !f.Since.IsZero() {
		w.add("at >= ?", unixNanos(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("at < ?", unixNanos(f.Until))
	}
	if f.Cursor != "" {
		at, id, err := decodeCursor(eventCursor, f.Cursor)
		if err != nil {
			return "", nil, err
		}
		w.add("(at, id) < (?, ?)", at, id)
	}
	query := "SELECT " + eventColumns + " FROM events" + w.String() + " ORDER BY at DESC, id DESC"
	if limit > 0 {
		query += " LIMIT ?"
		w.args = append(w.args, limit)
	}
	return s.dialect.bind(query), w.args, nil
}
