package gateway

import (
	"context"
	"slices"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/activities/audit"
	"github.com/gatehouse-dev/gatehouse/approval"
)

// maxAuditRows bounds the audit events the run page shows.
const maxAuditRows = 200

// auditSection is the run's audit trail as the run page shows it.
type auditSection struct {
	// Configured: the gateway has an audit store to read.
	Configured bool
	// Events are oldest first.
	Events []approval.AuditEvent
	// More: the run has more events than the page shows (the newest are).
	More  bool
	Error string
}

// runAudit reads the run's audit events from the audit store, when the
// gateway has one. The caller has read the run as the user may see it.
func (u *webUI) runAudit(ctx context.Context, run approval.Run) auditSection {
	if u.s.Audit == nil {
		return auditSection{}
	}
	page, err := u.s.Audit.Query(ctx, audit.Filter{Workspaces: []string{run.Workspace}, RunID: run.ID, Limit: maxAuditRows})
	if err != nil {
		u.s.Logger.Warn("audit trail of run not readable", zap.String("run_id", run.ID), zap.Error(err))
		return auditSection{Configured: true, Error: "the audit store did not answer; the run itself is shown as it stands"}
	}
	events := slices.Clone(page.Events)
	slices.Reverse(events) // the store answers newest first
	return auditSection{Configured: true, Events: events, More: page.NextCursor != ""}
}
