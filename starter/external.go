package starter

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// ExternalOutcome is what a verified external callback did.
type ExternalOutcome string

// The outcomes of an external callback that was not refused.
const (
	// ExternalAccepted: the decision was signalled to the run, which
	// checks it again and records it.
	ExternalAccepted ExternalOutcome = "accepted"
	// ExternalUnchanged: the callback decides nothing (the ticket still
	// waits, an edit) or repeats the decision that counted.
	ExternalUnchanged ExternalOutcome = "unchanged"
)

// DecideExternal carries an external system's decision, from a callback the
// gateway verified, to the run. The run's own rules are checked first, so a
// refusal (a decision on another ticket, a different decision after the one
// that counted, a finished run) is an error and nothing is sent; a decision
// that passes is signed and signalled, and the caller is not kept waiting on
// the workflow.
func (c *Client) DecideExternal(ctx context.Context, ws, runID string, d approval.ExternalDecision) (ExternalOutcome, approval.Run, error) {
	res, run, err := c.decideExternal(ctx, ws, runID, d)
	result := outcome(err)
	if err == nil {
		result = string(res)
	}
	c.Metrics.Decision(approval.DecisionKind(string(d.Provider)+":"+string(d.Verdict)), approval.ChannelExternal, result)
	return res, run, err
}

func (c *Client) decideExternal(ctx context.Context, ws, runID string, d approval.ExternalDecision) (ExternalOutcome, approval.Run, error) {
	for attempt := 0; ; attempt++ {
		run, err := c.GetRun(ctx, ws, runID)
		if err != nil {
			return "", approval.Run{}, err
		}
		if run.External == nil {
			return "", run, approval.Errorf(approval.CodeNotFound, "run %q of workspace %q takes no external approval", runID, ws)
		}
		changed, err := run.CheckExternal(d)
		if err != nil || !changed {
			return ExternalUnchanged, run, err
		}
		s := workflows.ExternalSignal{Decision: d, IssuedAt: time.Now().UTC()}
		payload, err := workflows.ExternalPayload(runID, s)
		if err != nil {
			return "", run, err
		}
		s.Signature = c.keys.Sign(payload)
		err = c.temporal.SignalWorkflow(ctx, runID, "", workflows.SignalExternal, s)
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) && attempt == 0 {
			continue // the run closed meanwhile: answer from its final state
		}
		if err != nil {
			return "", run, fmt.Errorf("signal run %s: %w", runID, err)
		}
		return ExternalAccepted, run, nil
	}
}

// FindByTicket returns the id of the run of workspace ws whose ticket is
// ticket (a ServiceNow number or sys_id, a Jira key, a webhook token's
// digest), from the ticket search attribute; ws "" looks in every
// workspace. It returns the run's workspace too.
func (c *Client) FindByTicket(ctx context.Context, ws, ticket string) (id, workspace string, err error) {
	query := fmt.Sprintf("%s = '%s'", workflows.TicketKey.GetName(), quoteQuery(ticket))
	if ws != "" {
		query += fmt.Sprintf(" AND %s = '%s'", workflows.WorkspaceKey.GetName(), quoteQuery(ws))
	}
	runs, err := c.list(ctx, query)
	if err != nil {
		return "", "", err
	}
	if len(runs) == 0 {
		return "", "", approval.Errorf(approval.CodeNotFound, "no run has ticket %q", ticket)
	}
	return runs[0].ID, runs[0].Workspace, nil
}
