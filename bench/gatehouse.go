package bench

import (
	"context"
	"fmt"
	"net/http"

	"go.temporal.io/sdk/client"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

// runRef names one run of either side: the workflow ID, and for Gatehouse
// the workspace its API path needs.
type runRef struct {
	ID        string
	Workspace string
}

// approvalsPerRun is what the bench workspaces' rule asks for.
const approvalsPerRun = 2

// approverOf names who takes decision n: alice requests every run, so
// separation of duties leaves bob and carol to approve.
func approverOf(n int) string {
	if n%2 == 0 {
		return "bob"
	}
	return "carol"
}

func tokenOf(user string) string { return "bench-" + user }

// gatehouseSide drives Gatehouse as its users do: the REST API over real
// HTTP, with a real plan that needs two approvals.
type gatehouseSide struct {
	base       string // the gateway's URL
	httpClient *http.Client
	temporal   client.Client // only to wait for the workflow to close
	plan       []byte
	workspaces int // runs of one batch never share a workspace: see config.go
}

func (g *gatehouseSide) name() string          { return "gatehouse" }
func (g *gatehouseSide) applyActivity() string { return "Apply" }
func (g *gatehouseSide) decisionsPerRun() int  { return approvalsPerRun }

func (g *gatehouseSide) api(user string) *gateway.Client {
	return &gateway.Client{BaseURL: g.base, Token: tokenOf(user), HTTP: g.httpClient}
}

// start submits the plan as alice; the API answers once the run waits for
// approval (no policies: it never answers evaluating_policy).
func (g *gatehouseSide) start(ctx context.Context, i int) (runRef, error) {
	ws := workspaceName(i % g.workspaces)
	run, err := g.api("alice").CreateRun(ctx, ws, g.plan, "bench", "")
	if err != nil {
		return runRef{}, fmt.Errorf("create run in %s: %w", ws, err)
	}
	if run.Status != approval.StatusPendingApproval {
		return runRef{}, fmt.Errorf("run %s: status %s; want %s", run.ID, run.Status, approval.StatusPendingApproval)
	}
	return runRef{ID: run.ID, Workspace: ws}, nil
}

// approve posts decision n (0-based) as bob, then carol.
func (g *gatehouseSide) approve(ctx context.Context, r runRef, n int) error {
	_, err := g.api(approverOf(n)).Decide(ctx, r.Workspace, r.ID, approval.DecisionApprove, gateway.Decision{}, "")
	if err != nil {
		return fmt.Errorf("approve run %s as %s: %w", r.ID, approverOf(n), err)
	}
	return nil
}

// closed waits for the run's workflow to complete.
func (g *gatehouseSide) closed(ctx context.Context, r runRef) error {
	if err := g.temporal.GetWorkflow(ctx, r.ID, "").Get(ctx, nil); err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	return nil
}

// check reads the finished run through the API: it must have applied.
func (g *gatehouseSide) check(ctx context.Context, r runRef) error {
	run, err := g.api("alice").GetRun(ctx, r.Workspace, r.ID)
	if err != nil {
		return fmt.Errorf("read run %s: %w", r.ID, err)
	}
	if run.Status != approval.StatusApplied {
		return fmt.Errorf("run %s ended %s (%s); want applied", r.ID, run.Status, run.Error)
	}
	return nil
}
