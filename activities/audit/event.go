package audit

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// eventColumns are the events table's columns in the order eventArgs binds
// and scanEvent reads them.
const eventColumns = `id, at, actor_id, actor_email, actor_source, channel, action, workspace, environment, run_id,
	reason_ids, plan_sha256, adds, changes, destroys, replaces, forgets, imports, moves, invocations, resource_count,
	changes_digest, comment, response_seconds, config_version, workflow_version, status_before, status_after, detail,
	requested_by`

// The whole seconds a unix nanosecond count (an int64) can hold: years 1678
// to 2262.
const (
	minUnixSeconds = -(1 << 63) / int64(time.Second)
	maxUnixSeconds = (1<<63 - 1) / int64(time.Second)
)

// validate refuses an event the trail could not store faithfully or find
// again: without an id it could be stored twice, without a run or workspace
// no reader could be allowed to see it. Strings must be UTF-8 without NUL,
// as PostgreSQL's text requires: SQLite would take them, and a trail should
// not hold in one database what the other refuses.
func validate(e approval.AuditEvent) error {
	switch {
	case e.ID == "":
		return fmt.Errorf("event has no id: %w", ErrInvalid)
	case e.At.IsZero():
		return fmt.Errorf("event %q has no time: %w", e.ID, ErrInvalid)
	case e.At.Unix() <= minUnixSeconds || e.At.Unix() >= maxUnixSeconds:
		return fmt.Errorf("event %q: time %s is out of range: %w", e.ID, e.At, ErrInvalid)
	case e.Workspace == "":
		return fmt.Errorf("event %q has no workspace: %w", e.ID, ErrInvalid)
	case e.RunID == "":
		return fmt.Errorf("event %q has no run: %w", e.ID, ErrInvalid)
	case e.Action == "":
		return fmt.Errorf("event %q has no action: %w", e.ID, ErrInvalid)
	}
	texts := []string{
		e.ID, string(e.Actor.ID), e.Actor.Email, string(e.Actor.Source), e.Actor.Channel, string(e.Action), e.Workspace,
		e.Environment, e.RunID, e.Plan.SHA256, e.Plan.ChangesDigest, e.Comment, e.ConfigVersion, e.WorkflowVersion,
		string(e.StatusBefore), string(e.StatusAfter), e.Detail, string(e.RequestedBy),
	}
	texts = append(texts, e.ReasonIDs...)
	for _, s := range texts {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return fmt.Errorf("event %q: text %q is not UTF-8 without NUL: %w", e.ID, s, ErrInvalid)
		}
	}
	return nil
}

// eventArgs are the event's values for eventColumns.
func eventArgs(e approval.AuditEvent) ([]any, error) {
	reasons := ""
	if len(e.ReasonIDs) > 0 {
		b, err := json.Marshal(e.ReasonIDs)
		if err != nil {
			return nil, fmt.Errorf("event %q: reason ids: %w", e.ID, err)
		}
		reasons = string(b)
	}
	p := e.Plan
	return []any{
		e.ID, e.At.UnixNano(), string(e.Actor.ID), e.Actor.Email, string(e.Actor.Source), e.Actor.Channel,
		string(e.Action), e.Workspace, e.Environment, e.RunID,
		reasons, p.SHA256, p.Adds, p.Changes, p.Destroys, p.Replaces, p.Forgets, p.Imports, p.Moves, p.Invocations,
		p.ResourceCount, p.ChangesDigest, e.Comment, e.ResponseSeconds, e.ConfigVersion, e.WorkflowVersion,
		string(e.StatusBefore), string(e.StatusAfter), e.Detail, string(e.RequestedBy),
	}, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// scanEvent reads a row of eventColumns.
func scanEvent(r scanner) (approval.AuditEvent, error) {
	var (
		e                                                 approval.AuditEvent
		at                                                int64
		actorID, source, action, before, after, requester string
		reasons                                           string
	)
	p := &e.Plan
	err := r.Scan(
		&e.ID, &at, &actorID, &e.Actor.Email, &source, &e.Actor.Channel, &action, &e.Workspace, &e.Environment,
		&e.RunID, &reasons, &p.SHA256, &p.Adds, &p.Changes, &p.Destroys, &p.Replaces, &p.Forgets, &p.Imports,
		&p.Moves, &p.Invocations, &p.ResourceCount, &p.ChangesDigest, &e.Comment, &e.ResponseSeconds,
		&e.ConfigVersion, &e.WorkflowVersion, &before, &after, &e.Detail, &requester,
	)
	if err != nil {
		return approval.AuditEvent{}, fmt.Errorf("scan event: %w", err)
	}
	e.At = time.Unix(0, at).UTC()
	e.Actor.ID, e.Actor.Source, e.Action = approval.UserID(actorID), approval.Source(source), approval.AuditAction(action)
	e.StatusBefore, e.StatusAfter, e.RequestedBy = approval.Status(before), approval.Status(after), approval.UserID(requester)
	if reasons != "" {
		if err := json.Unmarshal([]byte(reasons), &e.ReasonIDs); err != nil {
			return approval.AuditEvent{}, fmt.Errorf("event %q: reason ids: %w", e.ID, err)
		}
	}
	return e, nil
}
