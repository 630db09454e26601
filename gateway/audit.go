package gateway

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/activities/audit"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/starter"
)

// Limits of the audit API's pages.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// auditQuery reads the audit API's filters, every one checked before
// anything is read: a malformed one is a 400 naming it.
func (s *server) auditQuery(c echo.Context, paged bool) (audit.Filter, error) {
	if s.Audit == nil {
		return audit.Filter{}, echo.NewHTTPError(http.StatusServiceUnavailable, "no audit trail: this gateway has no database configured")
	}
	q := c.QueryParams()
	for name := range q {
		known := []string{"workspace", "run", "actor", "action", "since", "until", "limit", "cursor", "format"}
		if !slices.Contains(known, name) {
			return audit.Filter{}, approval.Errorf(approval.CodeInvalid, "%s: unknown parameter (want workspace, run, actor, action, since, until, limit, cursor)", name)
		}
	}
	user := userOf(c)
	f := audit.Filter{
		Workspace: q.Get("workspace"), RunID: q.Get("run"), Actor: approval.UserID(q.Get("actor")),
		Action: approval.AuditAction(q.Get("action")), Workspaces: s.Config.Readable(user),
	}
	if f.Workspace != "" {
		ws, ok := s.Config.Workspace(f.Workspace)
		switch {
		case !ok:
			return f, approval.Errorf(approval.CodeNotFound, "workspace %q not found", f.Workspace)
		case !ws.CanRead(user):
			return f, approval.Errorf(approval.CodeForbidden, "workspace %q: you may not read its audit trail", f.Workspace)
		}
	}
	if f.Action != "" && !slices.Contains(approval.AuditActions, f.Action) {
		return f, approval.Errorf(approval.CodeInvalid, "action: unknown action %q", f.Action)
	}
	var err error
	if f.Since, err = auditTime("since", q.Get("since")); err != nil {
		return f, err
	}
	if f.Until, err = auditTime("until", q.Get("until")); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, approval.Errorf(approval.CodeInvalid, "since: must be before until")
	}
	if !paged {
		if q.Has("limit") || q.Has("cursor") {
			return f, approval.Errorf(approval.CodeInvalid, "limit, cursor: an export has every matching event; page with GET /api/v1/audit")
		}
		return f, nil
	}
	if q.Has("format") {
		return f, approval.Errorf(approval.CodeInvalid, "format: only the export takes a format")
	}
	if f.Limit, err = pageLimit(q.Get("limit")); err != nil {
		return f, err
	}
	f.Cursor = q.Get("cursor")
	return f, nil
}

// pageLimit reads a page's limit: defaultAuditLimit when absent, at most
// maxAuditLimit.
func pageLimit(s string) (int, error) {
	if s == "" {
		return defaultAuditLimit, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxAuditLimit {
		return 0, approval.Errorf(approval.CodeInvalid, "limit: want a whole number from 1 to %d, not %q", maxAuditLimit, s)
	}
	return n, nil
}

// auditTime reads an RFC 3339 time ("" is none).
func auditTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, approval.Errorf(approval.CodeInvalid, "%s: %q is not an RFC 3339 time such as 2026-12-01T00:00:00Z", name, s)
	}
	return t, nil
}

// storeError turns the store's refusal of a cursor into a 400.
func storeError(err error) error {
	if errors.Is(err, audit.ErrInvalid) {
		return approval.Errorf(approval.CodeInvalid, "cursor: not one this API gave out")
	}
	return err
}

// listAudit answers GET /api/v1/audit: one page of events, newest first.
func (s *server) listAudit(c echo.Context) error {
	f, err := s.auditQuery(c, true)
	if err != nil {
		return err
	}
	page, err := s.Audit.Query(c.Request().Context(), f)
	if err != nil {
		return storeError(err)
	}
	events := page.Events
	if events == nil {
		events = []approval.AuditEvent{}
	}
	return c.JSON(http.StatusOK, map[string]any{"events": events, "next_cursor": page.NextCursor})
}

// exportAudit answers GET /api/v1/audit/export: every matching event, newest
// first, streamed as CSV or JSON Lines. Everything that can be refused is
// refused before the first byte; a failure while streaming aborts the
// connection (and the server log says so).
func (s *server) exportAudit(c echo.Context) error {
	f, err := s.auditQuery(c, false)
	if err != nil {
		return err
	}
	type encoder interface {
		Encode(approval.AuditEvent) error
		Flush() error
	}
	w := c.Response()
	var enc encoder
	switch format := c.QueryParam("format"); format {
	case "csv", "":
		w.Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		w.Header().Set(echo.HeaderContentDisposition, `attachment; filename="gatehouse-audit.csv"`)
		enc = audit.NewCSVEncoder(w)
	case "jsonl":
		w.Header().Set(echo.HeaderContentType, "application/x-ndjson")
		w.Header().Set(echo.HeaderContentDisposition, `attachment; filename="gatehouse-audit.jsonl"`)
		enc = audit.NewJSONLEncoder(w)
	default:
		return approval.Errorf(approval.CodeInvalid, "format: want csv or jsonl, not %q", format)
	}
	w.WriteHeader(http.StatusOK)
	n := 0
	err = s.Audit.Export(c.Request().Context(), f, func(e approval.AuditEvent) error {
		n++
		if err := enc.Encode(e); err != nil {
			return err
		}
		if n%500 == 0 {
			if err := enc.Flush(); err != nil {
				return err
			}
			w.Flush()
		}
		return nil
	})
	if err == nil {
		err = enc.Flush()
	}
	if err != nil {
		// The status is sent. Ending the body as if complete would hand
		// an auditor a silently short file: abort the connection instead,
		// so the client sees the export break off.
		s.Logger.Error("audit export broke off: connection aborted", zap.String("uri", c.Request().RequestURI),
			zap.String("user", string(userOf(c).ID)), zap.Int("events", n), zap.Error(err))
		panic(http.ErrAbortHandler)
	}
	return nil
}

// listRunsFromAudit answers GET /api/v1/workspaces/:ws/runs?source=audit:
// the run list from the audit trail, which pages past Temporal
// visibility's 1000 and keeps runs whose history Temporal has dropped.
func (s *server) listRunsFromAudit(c echo.Context, status approval.Status) error {
	if s.Audit == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "no audit trail: this gateway has no database configured")
	}
	for name := range c.QueryParams() {
		if !slices.Contains([]string{"source", "status", "limit", "cursor"}, name) {
			return approval.Errorf(approval.CodeInvalid, "%s: unknown parameter (want source, status, limit, cursor)", name)
		}
	}
	limit, err := pageLimit(c.QueryParam("limit"))
	if err != nil {
		return err
	}
	ws, user := workspaceOf(c), userOf(c)
	f := audit.RunFilter{Workspaces: []string{ws.Name}, Workspace: ws.Name, Status: status, Limit: limit, Cursor: c.QueryParam("cursor")}
	if !ws.CanRead(user) {
		f.RequestedBy = user.ID
	}
	page, err := s.Audit.Runs(c.Request().Context(), f)
	if err != nil {
		return storeError(err)
	}
	runs := make([]auditRunView, 0, len(page.Runs))
	for _, r := range page.Runs {
		runs = append(runs, auditRunView{
			RunSummary: starter.RunSummary{
				ID: r.RunID, Workspace: r.Workspace, Environment: r.Environment, Status: r.Status,
				RequestedBy: string(r.RequestedBy), CreatedAt: r.CreatedAt,
			},
			UpdatedAt: r.UpdatedAt, LastAction: r.LastAction, Plan: r.Plan,
		})
	}
	return c.JSON(http.StatusOK, map[string]any{"runs": runs, "next_cursor": page.NextCursor})
}

// auditRunView is a run as the audit trail lists it.
type auditRunView struct {
	starter.RunSummary
	UpdatedAt  time.Time            `json:"updated_at"`
	LastAction approval.AuditAction `json:"last_action"`
	Plan       approval.PlanSummary `json:"plan"`
}

// recordTermination adds a run that Temporal terminated to the audit trail:
// the workflow could not record it itself. The event's ID is fixed per run,
// so every later read stores nothing more.
func (s *server) recordTermination(c echo.Context, run approval.Run) {
	if s.Audit == nil || run.Status != approval.StatusTerminated || run.Termination == nil {
		return
	}
	e := run.AuditEvent(approval.AuditTerminated, run.Termination.At)
	e.ID = run.ID + "/terminated"
	e.StatusBefore = ""
	e.Actor = approval.AuditActor{ID: approval.UserID("temporal:" + run.Termination.By), Channel: approval.ChannelSystem}
	e.Comment = approval.TruncateUTF8(run.Termination.Reason, approval.MaxCommentBytes)
	if err := s.Audit.Write(c.Request().Context(), e); err != nil {
		s.Logger.Warn("termination not recorded in the audit trail", zap.String("run", run.ID), zap.Error(err))
	}
}
