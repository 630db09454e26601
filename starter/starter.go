// Package starter is Gatehouse's client side of Temporal: it starts runs,
// reads them, and carries every person's decision to the run workflow as an
// Update. Every channel (REST today; Slack and ITSM callbacks later) decides
// through Decide, so a decision means the same wherever it comes from.
package starter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// Client starts and decides runs.
type Client struct {
	temporal  client.Client
	namespace string
	taskQueue string
	config    *config.Config
	// MaxWakeups, when set, overrides how often a run wakes up before it
	// continues as new (workflows.DefaultMaxWakeups). Tests lower it.
	MaxWakeups int
}

// New returns a Client for runs on taskQueue in namespace.
func New(c client.Client, namespace, taskQueue string, cfg *config.Config) *Client {
	return &Client{temporal: c, namespace: namespace, taskQueue: taskQueue, config: cfg}
}

// StartRequest asks for a new run.
type StartRequest struct {
	Workspace   string
	RequestedBy approval.Identity
	// SubmittedBy is the automation submitting on behalf of RequestedBy.
	SubmittedBy *approval.Identity
	Message     string
	Plan        approval.PlanSummary
	// Cost is the plan's Infracost estimate, nil when none was submitted.
	Cost *approval.CostSummary
	// IdempotencyKey, when set, makes a retried start return the run the
	// first attempt created instead of creating another.
	IdempotencyKey string
}

// StartRun starts a run and returns its state as the workflow first
// evaluated it.
func (c *Client) StartRun(ctx context.Context, req StartRequest) (approval.Run, error) {
	ws, ok := c.config.Workspace(req.Workspace)
	if !ok {
		return approval.Run{}, approval.Errorf(approval.CodeNotFound, "workspace %q not found", req.Workspace)
	}
	in := workflows.RunInput{
		Workspace:     ws.Workspace,
		RequestedBy:   req.RequestedBy,
		SubmittedBy:   req.SubmittedBy,
		Message:       req.Message,
		Plan:          req.Plan,
		Cost:          req.Cost,
		Directory:     c.config.Directory(),
		ConfigVersion: c.config.Version,
		MaxWakeups:    c.MaxWakeups,
	}
	if ws.Apply != nil {
		in.ApplyTimeout = ws.Apply.Timeout
	}
	opts := client.StartWorkflowOptions{
		ID:        runID(req),
		TaskQueue: c.taskQueue,
		// A retried start with the same key finds the run it already made,
		// running or finished, rather than starting a second one.
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.WorkspaceKey.ValueSet(req.Workspace),
		),
		StaticSummary: fmt.Sprintf("%s: plan by %s (+%d ~%d -%d)",
			req.Workspace, req.RequestedBy.ID, req.Plan.Adds, req.Plan.Changes, req.Plan.Destroys),
	}
	wr, err := c.temporal.ExecuteWorkflow(ctx, opts, workflows.RunWorkflowName, in)
	if err != nil {
		return approval.Run{}, fmt.Errorf("start run: %w", err)
	}
	run, err := c.queryState(ctx, wr.GetID())
	if err != nil {
		return approval.Run{}, fmt.Errorf("read new run %s: %w", wr.GetID(), err)
	}
	return c.settlePolicy(ctx, run), nil
}

// policyWait bounds how long StartRun waits for a new run's policies, so the
// answer shows the policy reasons (or the denial) in the common case and
// still returns promptly when evaluation is slow.
const policyWait = 3 * time.Second

// settlePolicy waits briefly while the run's policies are being evaluated and
// returns the latest state it read.
func (c *Client) settlePolicy(ctx context.Context, run approval.Run) approval.Run {
	deadline := time.Now().Add(policyWait)
	for run.Status == approval.StatusEvaluatingPolicy && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return run
		case <-time.After(50 * time.Millisecond):
		}
		next, err := c.queryState(ctx, run.ID)
		if err != nil {
			return run
		}
		run = next
	}
	return run
}

// runID is a new, time-ordered id, or one derived from the idempotency key so
// retries land on the same workflow.
func runID(req StartRequest) string {
	if req.IdempotencyKey == "" {
		return "run-" + uuid.Must(uuid.NewV7()).String()
	}
	sum := sha256.Sum256([]byte(req.Workspace + "\x00" + string(req.RequestedBy.ID) + "\x00" + req.IdempotencyKey))
	return "run-" + hex.EncodeToString(sum[:16])
}

// GetRun returns the run with id in workspace ws. A run of another workspace
// is reported as not found, like one that does not exist.
func (c *Client) GetRun(ctx context.Context, ws, id string) (approval.Run, error) {
	desc, err := c.temporal.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return approval.Run{}, approval.Errorf(approval.CodeNotFound, "run %q not found in workspace %q", id, ws)
	}
	if err != nil {
		return approval.Run{}, fmt.Errorf("describe run %s: %w", id, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	if info.GetType().GetName() != workflows.RunWorkflowName || searchAttrString(info.GetSearchAttributes(), workflows.WorkspaceKey.GetName()) != ws {
		return approval.Run{}, approval.Errorf(approval.CodeNotFound, "run %q not found in workspace %q", id, ws)
	}
	if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		// A finished run is read from its result, which needs no worker.
		var run approval.Run
		if err := c.temporal.GetWorkflow(ctx, id, "").Get(ctx, &run); err != nil {
			return approval.Run{}, fmt.Errorf("read result of run %s: %w", id, err)
		}
		return run, nil
	}
	return c.queryState(ctx, id)
}

func (c *Client) queryState(ctx context.Context, id string) (approval.Run, error) {
	v, err := c.temporal.QueryWorkflow(ctx, id, "", workflows.QueryState)
	if err != nil {
		return approval.Run{}, fmt.Errorf("query run %s: %w", id, err)
	}
	var run approval.Run
	if err := v.Get(&run); err != nil {
		return approval.Run{}, fmt.Errorf("decode run %s: %w", id, err)
	}
	return run, nil
}

// RunSummary is what the run list shows of a run, read from Temporal's
// visibility store without touching the run itself.
type RunSummary struct {
	ID               string          `json:"id"`
	Workspace        string          `json:"workspace"`
	Environment      string          `json:"environment,omitempty"`
	Status           approval.Status `json:"status"`
	RequestedBy      string          `json:"requested_by,omitempty"`
	CreatedAt        time.Time       `json:"created_at"`
	PendingSince     *time.Time      `json:"pending_since,omitempty"`
	Deadline         *time.Time      `json:"deadline,omitempty"`
	PendingApprovers []string        `json:"pending_approvers,omitempty"`
}

// maxListed bounds a listing: visibility pages are cheap, but an answer of
// thousands of runs helps nobody.
const maxListed = 1000

// ListRuns lists the runs of workspace ws, newest first, optionally only
// those in status.
func (c *Client) ListRuns(ctx context.Context, ws string, status approval.Status) ([]RunSummary, error) {
	query := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s'", workflows.RunWorkflowName, workflows.WorkspaceKey.GetName(), ws)
	if status != "" {
		query += fmt.Sprintf(" AND %s = '%s'", workflows.StatusKey.GetName(), status)
	}
	return c.list(ctx, query)
}

// StuckQuery is the visibility query for runs that have waited for people
// since before cutoff. README shows it, `gatehouse runs --stuck` runs it, and
// the Temporal Web UI accepts it as is.
func StuckQuery(cutoff time.Time) string {
	return fmt.Sprintf("%s IN ('pending_approval', 'changes_requested', 'awaiting_signoff') AND %s < '%s'",
		workflows.StatusKey.GetName(), workflows.PendingSinceKey.GetName(), cutoff.UTC().Format(time.RFC3339))
}

// ListStuck lists the runs waiting for people for longer than olderThan at
// now, in any workspace (or only ws).
func (c *Client) ListStuck(ctx context.Context, olderThan time.Duration, now time.Time, ws string) ([]RunSummary, error) {
	query := StuckQuery(now.Add(-olderThan))
	if ws != "" {
		query += fmt.Sprintf(" AND %s = '%s'", workflows.WorkspaceKey.GetName(), ws)
	}
	return c.list(ctx, query)
}

func (c *Client) list(ctx context.Context, query string) ([]RunSummary, error) {
	var out []RunSummary
	var token []byte
	for {
		resp, err := c.temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: c.namespace, Query: query, NextPageToken: token, PageSize: 100,
		})
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			sa := e.GetSearchAttributes()
			out = append(out, RunSummary{
				ID:               e.GetExecution().GetWorkflowId(),
				Workspace:        searchAttrString(sa, workflows.WorkspaceKey.GetName()),
				Environment:      searchAttrString(sa, workflows.EnvironmentKey.GetName()),
				Status:           approval.Status(searchAttrString(sa, workflows.StatusKey.GetName())),
				RequestedBy:      searchAttrString(sa, workflows.RequestedByKey.GetName()),
				CreatedAt:        e.GetStartTime().AsTime(),
				PendingSince:     searchAttrTime(sa, workflows.PendingSinceKey.GetName()),
				Deadline:         searchAttrTime(sa, workflows.DeadlineKey.GetName()),
				PendingApprovers: searchAttrStrings(sa, workflows.PendingApproversKey.GetName()),
			})
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 || len(out) >= maxListed {
			return out, nil
		}
	}
}

// DecisionRequest is a person's decision on a run, from any channel.
type DecisionRequest struct {
	Workspace      string
	RunID          string
	Kind           approval.DecisionKind
	Actor          approval.Identity
	Comment        string
	ReasonIDs      []string              // approve only: limit to these reasons
	Plan           *approval.PlanSummary // revise_plan only: the new plan
	Cost           *approval.CostSummary // revise_plan only: its estimate, if any
	IdempotencyKey string                // becomes the Update ID; generated when empty
	Channel        string                // where the decision came from, e.g. "api"
}

// Decide carries a decision to the run: GetRun, then DecideOn.
func (c *Client) Decide(ctx context.Context, d DecisionRequest) (approval.Run, error) {
	run, err := c.GetRun(ctx, d.Workspace, d.RunID)
	if err != nil {
		return approval.Run{}, err
	}
	return c.DecideOn(ctx, run, d)
}

// DecideOn carries a decision to a run the caller has just read. It first
// checks the decision against that state with the same rules the workflow's
// validator uses, so callers get "invalid" and "forbidden" answers before
// anything is sent; the workflow then decides for real. A finished run cannot
// take Updates: that is a conflict.
func (c *Client) DecideOn(ctx context.Context, run approval.Run, d DecisionRequest) (approval.Run, error) {
	req := approval.Request{ID: d.IdempotencyKey, Actor: d.Actor, Comment: d.Comment, ReasonIDs: d.ReasonIDs, Channel: d.Channel}
	if req.ID == "" {
		req.ID = uuid.NewString()
	}
	check, update, arg, err := decisionUpdate(run, d, req)
	if err != nil {
		return approval.Run{}, err
	}
	// Conflicts are left to the workflow: a retry of an Update that already
	// moved the run on must get that Update's original answer.
	if err := check(req); err != nil && approval.ErrorCode(err) != approval.CodeConflict && approval.ErrorCode(err) != approval.CodeRateLimited {
		return approval.Run{}, err
	}
	if run.Status.Final() {
		return approval.Run{}, approval.Errorf(approval.CodeConflict, "run is %s: it takes no more decisions", run.Status)
	}
	opts := client.UpdateWorkflowOptions{
		WorkflowID:   d.RunID,
		UpdateID:     req.ID,
		UpdateName:   update,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	}
	for attempt := 1; ; attempt++ {
		out, err := c.update(ctx, opts)
		// An Update that reaches a workflow run as it continues as new finds
		// it closed; the run itself lives on in the next workflow run, so
		// the Update is sent again (same ID: it still applies once).
		if err != nil && isClosed(err) && attempt < 5 && c.stillRunning(ctx, d.RunID) {
			continue
		}
		if err != nil {
			return approval.Run{}, updateError(d.RunID, err)
		}
		return out, nil
	}
}

func (c *Client) update(ctx context.Context, opts client.UpdateWorkflowOptions) (approval.Run, error) {
	h, err := c.temporal.UpdateWorkflow(ctx, opts)
	if err != nil {
		return approval.Run{}, err
	}
	var out approval.Run
	if err := h.Get(ctx, &out); err != nil {
		return approval.Run{}, err
	}
	return out, nil
}

// isClosed reports whether Temporal refused an Update because the workflow
// run it reached had closed.
func isClosed(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf) || strings.Contains(err.Error(), "workflow execution already completed")
}

// stillRunning reports whether the run's latest workflow run is open.
func (c *Client) stillRunning(ctx context.Context, id string) bool {
	desc, err := c.temporal.DescribeWorkflowExecution(ctx, id, "")
	return err == nil && desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING
}

// decisionUpdate picks the pure check, the Update and its argument for a
// decision kind.
func decisionUpdate(run approval.Run, d DecisionRequest, req approval.Request) (func(approval.Request) error, string, any, error) {
	switch d.Kind {
	case approval.DecisionApprove:
		return run.CheckApprove, workflows.UpdateApprove, req, nil
	case approval.DecisionReject:
		return run.CheckReject, workflows.UpdateReject, req, nil
	case approval.DecisionCancel:
		return run.CheckCancel, workflows.UpdateCancel, req, nil
	case approval.DecisionRevoke:
		return run.CheckRevoke, workflows.UpdateRevoke, req, nil
	case approval.DecisionRequestChanges:
		return run.CheckRequestChanges, workflows.UpdateRequestChanges, req, nil
	case approval.DecisionBypass:
		return run.CheckBypass, workflows.UpdateBypass, req, nil
	case approval.DecisionRenotify:
		// The rate limit is the workflow's to decide, on its own clock.
		return func(req approval.Request) error { return run.CheckRenotify(req, time.Time{}) }, workflows.UpdateRenotify, req, nil
	case approval.DecisionRevisePlan:
		if d.Plan == nil {
			return nil, "", nil, approval.Errorf(approval.CodeInvalid, "plan: required")
		}
		return run.CheckRevisePlan, workflows.UpdateRevisePlan, workflows.RevisePlanRequest{Request: req, Plan: *d.Plan, Cost: d.Cost}, nil
	}
	return nil, "", nil, approval.Errorf(approval.CodeInvalid, "decision: unknown kind %q", d.Kind)
}

// updateError maps what Temporal says about an Update back to domain errors.
func updateError(id string, err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch code := approval.Code(appErr.Type()); code {
		case approval.CodeInvalid, approval.CodeForbidden, approval.CodeConflict, approval.CodeNotFound, approval.CodeRateLimited:
			de := &approval.Error{Code: code, Message: appErr.Message()}
			var seconds float64
			if appErr.HasDetails() && appErr.Details(&seconds) == nil {
				de.RetryAfter = time.Duration(seconds * float64(time.Second))
			}
			return de
		}
	}
	if isClosed(err) {
		return approval.Errorf(approval.CodeConflict, "run %s is finished: it takes no more decisions", id)
	}
	return fmt.Errorf("update run %s: %w", id, err)
}
