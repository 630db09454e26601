package activities

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/gatehouse-dev/gatehouse/activities/itsm"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
)

// This file holds the activities of external approval: open the ticket
// that stands for a run's approval, read it (reconciliation) and withdraw
// it. The HTTP clients are in package itsm; here they meet the run.

// ErrExternalRefused is the type of an error the external system's answer
// makes final (a 4xx other than 408 and 429): retrying would not help.
const ErrExternalRefused = "ExternalRefused"

// TicketInput names the run (and, to read or withdraw it, its ticket).
type TicketInput struct {
	RunID     string            `json:"run_id"`
	Workspace string            `json:"workspace"`
	Ticket    approval.External `json:"ticket"`
	// Why is said in the ticket when Gatehouse withdraws it.
	Why string `json:"why,omitempty"`
}

// OpenTicket opens the ticket for a run's approval: a ServiceNow change
// request, a Jira issue or a signed webhook request, with the plan summary,
// cost, policy results, the deadline and a link to the run. Opening is
// idempotent per run (the clients look for the run's ticket first), so
// Temporal may retry it.
func (a *Activities) OpenTicket(ctx context.Context, in TicketInput) (approval.External, error) {
	p, x, err := a.provider(in.Workspace)
	if err != nil {
		return approval.External{}, err
	}
	v, err := a.view(ctx, Event{RunID: in.RunID, Workspace: in.Workspace}, nil)
	if err != nil {
		return approval.External{}, fmt.Errorf("read run %s: %w", in.RunID, err)
	}
	req := itsm.Request{
		RunID: in.RunID, Workspace: in.Workspace, RunURL: v.RunURL, Deadline: v.Run.Deadline,
		Title:       ticketTitle(v),
		Description: ticketDescription(v, time.Now()),
	}
	if x.Provider == approval.ProviderWebhook {
		req.CallbackURL = a.Config.PublicURL + "/api/v1/external/webhook/callback"
	}
	t, err := p.Open(ctx, req)
	if err != nil {
		return approval.External{}, externalError("open the ticket", err)
	}
	return approval.External{Provider: x.Provider, ID: t.ID, Ref: t.Ref, Link: t.Link, TokenSHA256: t.TokenSHA256}, nil
}

// ReadTicket reads the ticket now, for reconciliation, as the decision it
// stands for (VerdictNone while it waits).
func (a *Activities) ReadTicket(ctx context.Context, in TicketInput) (approval.ExternalDecision, error) {
	p, x, err := a.provider(in.Workspace)
	if err != nil {
		return approval.ExternalDecision{}, err
	}
	st, err := p.Read(ctx, itsmTicket(in.Ticket))
	if err != nil {
		return approval.ExternalDecision{}, externalError("read the ticket", err)
	}
	return approval.ExternalDecision{
		Provider: x.Provider, TicketID: in.Ticket.ID, Verdict: st.Verdict, State: st.State,
		Actor: st.Actor, Comment: st.Comment, DecidedAt: st.DecidedAt, Via: approval.ViaReconciliation,
	}, nil
}

// WithdrawTicket cancels the ticket of a run that ended without the
// system's decision.
func (a *Activities) WithdrawTicket(ctx context.Context, in TicketInput) error {
	p, _, err := a.provider(in.Workspace)
	if err != nil {
		return err
	}
	if err := p.Cancel(ctx, itsmTicket(in.Ticket), in.Why); err != nil {
		return externalError("withdraw the ticket", err)
	}
	return nil
}

// provider builds the client of the workspace's external system from the
// worker's config.
func (a *Activities) provider(workspace string) (itsm.Provider, *config.External, error) {
	ws, ok := a.Config.Workspace(workspace)
	if !ok || ws.External == nil {
		return nil, nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("workspace %q has no external approval on this worker", workspace), ErrWorkspaceUnknown, nil)
	}
	return ExternalProvider(ws.External, a.httpClient()), ws.External, nil
}

// ExternalProvider is the client of an external approval system.
func ExternalProvider(x *config.External, hc *http.Client) itsm.Provider {
	auth := itsm.Auth{Username: x.Username, Password: x.Password, Token: x.Token}
	switch x.Provider {
	case approval.ProviderServiceNow:
		return &itsm.ServiceNow{BaseURL: x.URL, Auth: auth, Fields: x.Fields, Client: hc}
	case approval.ProviderJira:
		return &itsm.Jira{BaseURL: x.URL, Auth: auth, Project: x.Project, IssueType: x.IssueType,
			Approved: x.ApprovedStatuses, Rejected: x.RejectedStatuses, CancelTransition: x.CancelTransition, Client: hc}
	default:
		return &itsm.Webhook{URL: x.URL, Secret: x.CallbackSecret, Client: hc}
	}
}

func (a *Activities) httpClient() *http.Client {
	if a.HTTP != nil {
		return a.HTTP
	}
	return &http.Client{Timeout: 20 * time.Second}
}

func itsmTicket(e approval.External) itsm.Ticket {
	return itsm.Ticket{ID: e.ID, Ref: e.Ref, Link: e.Link, TokenSHA256: e.TokenSHA256}
}

// externalError keeps what the system said and makes its refusals final.
func externalError(what string, err error) error {
	if errors.Is(err, itsm.ErrNoReconciliation) || itsm.Permanent(err) {
		return temporal.NewNonRetryableApplicationError(what+": "+err.Error(), ErrExternalRefused, nil)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// ticketTitle is the ticket's one line.
func ticketTitle(v view) string {
	p := v.Run.Plan
	return fmt.Sprintf("Gatehouse: apply %s (+%d ~%d -%d), run %s", v.Event.Workspace, p.Adds, p.Changes, p.Destroys, v.Event.RunID)
}

// ticketDescription is what approvers in the external system read: the
// same facts as a Gatehouse notice, as plain text.
func ticketDescription(v view, now time.Time) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("Gatehouse asks for approval to apply a plan to workspace %s (environment %s).", v.Event.Workspace, v.Environment())
	line("")
	line("Requested by: %s", v.Requester())
	if v.Run.Message != "" {
		line("Message: %s", clip(v.Run.Message, 1000))
	}
	line("Plan: %s (sha256 %s)", v.PlanLine(), v.Run.Plan.SHA256)
	if len(v.Removed) > 0 {
		more := ""
		if v.RemovedMore > 0 {
			more = fmt.Sprintf(" and %d more", v.RemovedMore)
		}
		line("Destroyed or replaced: %s%s", strings.Join(v.Removed, ", "), more)
	}
	line("Cost: %s", v.CostLine())
	if v.Run.Policy != nil {
		line("Policies: %d denials, %d warnings", len(v.Denials()), len(v.Warnings()))
		for _, w := range v.Warnings() {
			line("  warning: %s", w)
		}
	} else if len(v.Run.Policies) == 0 {
		line("Policies: none configured")
	}
	var held []string
	for _, r := range v.Run.Reasons {
		if r.Kind != approval.KindExternal {
			held = append(held, r.Name)
		}
	}
	if len(held) > 0 {
		line("Gatehouse rules this plan meets: %s", strings.Join(held, ", "))
	}
	if d := v.Run.Deadline; !d.IsZero() {
		line("Deadline: %s (%s); Gatehouse fails the run closed if nobody decides by then.", d.UTC().Format("Mon 2 Jan 2006 15:04 UTC"), until(d, now))
	}
	line("")
	if v.RunURL != "" {
		line("Run: %s", v.RunURL)
	}
	if v.TemporalURL != "" {
		line("Workflow: %s", v.TemporalURL)
	}
	line("Approve or reject this ticket: Gatehouse applies exactly this plan once it is approved here.")
	return b.String()
}
