// Package starter is Gatehouse's client side of Temporal: it starts runs,
// reads them, and carries every person's decision to the run workflow as an
// Update. Every channel (REST today; Slack and ITSM callbacks later) decides
// through Decide, so a decision means the same wherever it comes from.
package starter

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/metrics"
	"github.com/gatehouse-dev/gatehouse/signing"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// Client starts and decides runs.
type Client struct {
	temporal  client.Client
	namespace string
	taskQueue string
	config    *config.Config
	// keys sign what the client sends the run workflow: the workflow
	// counts nothing else.
	keys *signing.Keys
	// MaxWakeups, when set, overrides how often a run wakes up before it
	// continues as new (workflows.DefaultMaxWakeups). Tests lower it.
	MaxWakeups int
	// LockRetry, when set, overrides how often a queued run asks for its
	// workspace's apply lock (workflows.DefaultLockRetry). Tests lower it.
	LockRetry time.Duration
	// Metrics counts decisions by kind, channel and outcome; nil counts
	// nothing.
	Metrics *metrics.Metrics
}

// New returns a Client for runs on taskQueue in namespace that signs with
// keys (nil for a client that only reads).
func New(c client.Client, namespace, taskQueue string, cfg *config.Config, keys *signing.Keys) *Client {
	return &Client{temporal: c, namespace: namespace, taskQueue: taskQueue, config: cfg, keys: keys}
}

// StartRequest asks for a new run.
type StartRequest struct {
	Workspace   string
	RequestedBy approval.Identity
	// SubmittedBy is the automation submitting on behalf of RequestedBy.
	SubmittedBy *approval.Identity
	Message     string
	// Plan is the whole parsed plan: the workspace's rules are evaluated
	// on it here, and only its summary and the resulting reasons go to the
	// workflow.
	Plan approval.Plan
	// Cost is the plan's Infracost estimate, nil when none was submitted.
	Cost *approval.CostSummary
	// IdempotencyKey, when set, makes a retried start return the run the
	// first attempt created instead of creating another; the same key for
	// a different plan, message or estimate is refused.
	IdempotencyKey string
	// Origin says where the run comes from: the git ref to plan (terraform
	// workspaces started without a plan), the binary plan submitted beside
	// the JSON (PlanFileSHA256, already stored), and what triggered it
	// (Trigger "api", "hook" or "github", with Delivery, Repository,
	// Commit and the Actor who merged or pushed).
	Origin approval.Origin
	// ChangedSince, with Paths, asks the run to go on only if a file under
	// one of the path globs changed between this commit and Origin.Commit
	// (GitHub deliveries carry no file list; the worker diffs its checkout).
	ChangedSince string
	Paths        []string
}

// StartRun evaluates the workspace's rules and steps on the plan, starts a
// run with the result, signed, and returns its state as the workflow first
// evaluated it.
func (c *Client) StartRun(ctx context.Context, req StartRequest) (approval.Run, error) {
	ws, ok := c.config.Workspace(req.Workspace)
	if !ok {
		return approval.Run{}, approval.Errorf(approval.CodeNotFound, "workspace %q not found", req.Workspace)
	}
	if err := approval.CheckText("message", req.Message, approval.MaxMessageBytes); err != nil {
		return approval.Run{}, err
	}
	if c.keys == nil {
		return approval.Run{}, errors.New("start run: this gateway has no signing keys")
	}
	settings := ws.Workspace
	settings.Rules, settings.Steps = nil, nil // evaluated into Reasons
	origin := req.Origin
	if origin.Trigger == "" {
		origin.Trigger = "api"
	}
	in := workflows.RunInput{
		Workspace:     settings,
		RequestedBy:   req.RequestedBy,
		SubmittedBy:   req.SubmittedBy,
		Message:       req.Message,
		Plan:          workflows.InputPlan{PlanSummary: req.Plan.PlanSummary},
		Cost:          req.Cost,
		ConfigVersion: c.config.Version,
		MaxWakeups:    c.MaxWakeups,
		LockRetry:     c.LockRetry,
		IssuedAt:      time.Now().UTC(),
		Origin:        &origin,
		ChangedSince:  req.ChangedSince,
		Paths:         req.Paths,
		Lean:          workflows.StartLean,
	}
	switch {
	case req.Plan.SHA256 == "" && ws.Terraform == nil:
		return approval.Run{}, approval.Errorf(approval.CodeInvalid, "plan: required: workspace %s does not plan itself (it has no terraform block)", ws.Name)
	case req.Plan.SHA256 == "":
		in.Planning = true // the worker plans, and evaluates the rules
	case ws.Terraform != nil && origin.PlanFileSHA256 == "":
		return approval.Run{}, approval.Errorf(approval.CodeInvalid, "plan_file: required: workspace %s applies the binary plan (plan -out) beside its JSON; or send no plan and Gatehouse plans", ws.Name)
	default:
		in.Reasons = approval.Evaluate(ws.Workspace, req.Plan, req.Cost, req.RequestedBy, c.config.Directory())
	}
	if ws.Apply != nil {
		in.ApplyTimeout = ws.Apply.Timeout
	}
	if t := ws.Terraform; t != nil {
		in.ApplyTimeout, in.PlanTimeout, in.Replan = t.Timeout, t.Timeout, t.ReplanBeforeApply
	}
	id := runID(req)
	payload, err := workflows.StartPayload(id, in)
	if err != nil {
		return approval.Run{}, fmt.Errorf("start run: %w", err)
	}
	in.Signature = c.keys.Sign(payload)
	queue := c.taskQueue
	if ws.TaskQueue != "" {
		queue = ws.TaskQueue
	}
	opts := client.StartWorkflowOptions{
		ID:        id,
		TaskQueue: queue,
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
	// The run is ours and of this workspace: query it without describing
	// it first. A retried start may find it finished (the query then needs
	// a worker to replay it); GetRun reads such a run from its result.
	run, err := c.queryState(ctx, wr.GetID())
	switch {
	case errors.Is(err, ErrNoWorker) && (req.IdempotencyKey == "" || c.stillRunning(ctx, wr.GetID())):
		// Asking GetRun would only wait out another query bound. Only a
		// retry's run may have finished, and its result needs no worker;
		// a fresh id's run is this request's, just started.
	case err != nil || run.Workspace != req.Workspace:
		run, err = c.GetRun(ctx, req.Workspace, wr.GetID())
	}
	if err != nil {
		err = fmt.Errorf("read new run %s: %w", wr.GetID(), err)
		if req.IdempotencyKey == "" {
			return approval.Run{}, &StartedUnreadError{RunID: wr.GetID(), Workspace: req.Workspace, Err: err}
		}
		// A retry with the key lands on this run, and checks that it is
		// the same submission, which cannot be told now.
		return approval.Run{}, err
	}
	if req.IdempotencyKey != "" && !sameSubmission(run, req) {
		return approval.Run{}, approval.Errorf(approval.CodeUnprocessable,
			"Idempotency-Key: already used by %s for run %s with another plan, message or estimate; send a new key", req.RequestedBy.ID, run.ID)
	}
	if ws.Supersede {
		c.supersedeOlder(ctx, run, req.RequestedBy)
	}
	return c.settlePolicy(ctx, run), nil
}

// StartedUnreadError says that a run without an idempotency key started
// but could not be read right after (no worker polled its task queue, say).
// The run exists and goes on once a worker polls: the caller must be told
// its id, not that the request failed, or a retry would start a second run
// for the same plan.
type StartedUnreadError struct {
	RunID, Workspace string
	Err              error
}

func (e *StartedUnreadError) Error() string {
	return fmt.Sprintf("run %s started but could not be read: %v", e.RunID, e.Err)
}

func (e *StartedUnreadError) Unwrap() error { return e.Err }

// supersedeOlder ends the workspace's older runs that still wait for
// approval (or have not asked yet): the newer run replaces them. Each is
// read again and checked before it is ended, so a run that moved on
// (queued, approved) meanwhile is left alone. Failures are logged in the
// runs' own trail by their absence; the new run stands either way.
func (c *Client) supersedeOlder(ctx context.Context, newer approval.Run, by approval.Identity) {
	runs, err := c.ListRuns(ctx, newer.Workspace, ListFilter{})
	if err != nil {
		return
	}
	for _, old := range runs {
		switch old.Status {
		case approval.StatusPlanning, approval.StatusEvaluatingPolicy, approval.StatusPendingApproval, approval.StatusChangesRequested:
		default:
			continue
		}
		if old.ID == newer.ID || !old.CreatedAt.Before(newer.CreatedAt) {
			continue
		}
		_, _ = c.Decide(ctx, DecisionRequest{
			Workspace: newer.Workspace, RunID: old.ID, Kind: approval.DecisionSupersede, Actor: by,
			Comment: "superseded by run " + newer.ID, Channel: "system", IdempotencyKey: "supersede-by-" + newer.ID,
		})
	}
}

// sameSubmission reports whether run was started from what req submits: a
// retry of the same start, not another request under a used key.
func sameSubmission(run approval.Run, req StartRequest) bool {
	costSHA := func(c *approval.CostSummary) string {
		if c == nil {
			return ""
		}
		return c.SHA256
	}
	submitter := func(id *approval.Identity) approval.UserID {
		if id == nil {
			return ""
		}
		return id.ID
	}
	same := run.Message == req.Message && submitter(run.SubmittedBy) == submitter(req.SubmittedBy)
	if req.Plan.SHA256 == "" {
		// Gatehouse plans this run: the request is its ref.
		// The request is its ref; none asks for the workspace's own,
		// which planning then records by name.
		ref := ""
		if run.Origin != nil {
			ref = run.Origin.Ref
		}
		return same && (req.Origin.Ref == "" || ref == req.Origin.Ref)
	}
	first := run.Plan.SHA256
	if len(run.Rounds) > 0 {
		first = run.Rounds[0].Plan.SHA256 // the run may have been revised since
	}
	return same && first == req.Plan.SHA256 && (len(run.Rounds) > 1 || costSHA(run.Cost) == costSHA(req.Cost))
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
		next, err := c.queryState(ctx, run.ID) // our run, still running: no describe
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
// is reported as not found, like one that does not exist. A workflow that
// Temporal terminated or timed out before it reached a status of its own is
// reported as terminated, with who did it and why.
func (c *Client) GetRun(ctx context.Context, ws, id string) (approval.Run, error) {
	notFound := approval.Errorf(approval.CodeNotFound, "run %q not found in workspace %q", id, ws)
	if !ValidRunID(id) {
		return approval.Run{}, notFound
	}
	desc, err := c.temporal.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return approval.Run{}, notFound
	}
	if err != nil {
		return approval.Run{}, fmt.Errorf("describe run %s: %w", id, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	if info.GetType().GetName() != workflows.RunWorkflowName || searchAttrString(info.GetSearchAttributes(), workflows.WorkspaceKey.GetName()) != ws {
		return approval.Run{}, notFound
	}
	switch info.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return c.queryState(ctx, id)
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		// A finished run is read from its result, which needs no worker.
		var run approval.Run
		if err := c.temporal.GetWorkflow(ctx, id, "").Get(ctx, &run); err != nil {
			return approval.Run{}, fmt.Errorf("read result of run %s: %w", id, err)
		}
		return run, nil
	case enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
		// Described between two workflow runs: the next one is starting.
		return c.queryState(ctx, id)
	}
	return c.terminatedRun(ctx, ws, id, info.GetStatus())
}

// ValidRunID reports whether id can name a run: printable ASCII of sensible
// length. Anything else (empty, control characters, invalid UTF-8) names no
// run, and is answered as such before it reaches Temporal.
func ValidRunID(id string) bool {
	if id == "" || len(id) > 255 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if b := id[i]; b <= ' ' || b >= 0x7f {
			return false
		}
	}
	return true
}

// terminatedRun reads a workflow that ended outside Gatehouse: its last
// state (by query, which replays its history on a worker) and how it ended
// (its close event).
func (c *Client) terminatedRun(ctx context.Context, ws, id string, status enumspb.WorkflowExecutionStatus) (approval.Run, error) {
	run, err := c.queryState(ctx, id)
	if err != nil {
		run = approval.Run{ID: id, Workspace: ws, Reasons: []approval.Reason{}, Decisions: []approval.Decision{}}
	}
	end := &approval.Termination{By: "temporal", Reason: "the workflow " + strings.ToLower(strings.TrimPrefix(status.String(), "WORKFLOW_EXECUTION_STATUS_"))}
	it := c.temporal.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			break
		}
		end.At = ev.GetEventTime().AsTime()
		switch {
		case ev.GetWorkflowExecutionTerminatedEventAttributes() != nil:
			a := ev.GetWorkflowExecutionTerminatedEventAttributes()
			end.By, end.Reason = a.GetIdentity(), a.GetReason()
		case ev.GetWorkflowExecutionTimedOutEventAttributes() != nil:
			end.Reason = "the workflow execution timed out in Temporal"
		case ev.GetWorkflowExecutionFailedEventAttributes() != nil:
			end.Reason = "the workflow failed: " + ev.GetWorkflowExecutionFailedEventAttributes().GetFailure().GetMessage()
		case ev.GetWorkflowExecutionCanceledEventAttributes() != nil:
			end.Reason = "the workflow was cancelled in Temporal while it was " + string(run.Status)
		}
	}
	if run.Status == approval.StatusApplying {
		end.Reason += " (it was applying: the apply's outcome is unknown)"
	}
	run.Status = approval.StatusTerminated
	run.Termination = end
	return run, nil
}

func (c *Client) queryState(ctx context.Context, id string) (approval.Run, error) {
	// Without a deadline of its own the SDK gives a query 10 s, the same as
	// a workflow task's timeout: a query that arrives while a stopping
	// worker abandons the run's workflow task would fail just before the
	// task is handed to another worker. queryTimeout rides that out.
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, queryTimeout)
		defer cancel()
	}
	v, err := c.temporal.QueryWorkflow(ctx, id, "", workflows.QueryState)
	noWorker := false
	for err != nil && ctx.Err() == nil && (isDeadlineExceeded(err) || isNoPoller(err)) {
		// One attempt's 10 s ran out while the task waited for a worker,
		// or no worker has polled the run's queue lately (one that is
		// starting, or restarting, has not yet): ask again within our own
		// bound.
		if isNoPoller(err) {
			noWorker = true
			select {
			case <-ctx.Done():
				continue
			case <-time.After(250 * time.Millisecond):
			}
		}
		v, err = c.temporal.QueryWorkflow(ctx, id, "", workflows.QueryState)
	}
	if err != nil && (noWorker || isNoPoller(err) || (isDeadlineExceeded(err) && c.taskWaits(ctx, id))) {
		return approval.Run{}, fmt.Errorf("query run %s: %w: %w", id, ErrNoWorker, err)
	}
	if err != nil {
		return approval.Run{}, fmt.Errorf("query run %s: %w", id, err)
	}
	var run approval.Run
	if err := v.Get(&run); err != nil {
		return approval.Run{}, fmt.Errorf("decode run %s: %w", id, err)
	}
	return run, nil
}

// taskWaits reports whether the run's workflow task has waited for a
// worker longer than any live one would leave it: the query that ran out
// of time was held for that task (Temporal answers a query once the task
// pending for the run has completed), and matching, having seen the
// stopped worker poll lately, did not say that none polls. A task still
// started on a worker that died is given to another only after its
// timeout, so only a scheduled one counts.
func (c *Client) taskWaits(ctx context.Context, id string) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	desc, err := c.temporal.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return false
	}
	wft := desc.GetPendingWorkflowTask()
	return wft.GetState() == enumspb.PENDING_WORKFLOW_TASK_STATE_SCHEDULED &&
		time.Since(wft.GetScheduledTime().AsTime()) > unpickedTask
}

// unpickedTask is how long a scheduled workflow task may wait before the
// run is said to have no worker: a polling worker takes it within
// milliseconds.
const unpickedTask = 5 * time.Second

// ErrNoWorker says that reading a run needed a worker and none polled its
// task queue for as long as the read could wait: the workers are down or
// still starting.
var ErrNoWorker = errors.New("no worker is polling the run's task queue")

// isNoPoller reports whether Temporal refused a query because no worker has
// polled the task queue lately (matching's errNoRecentPoller).
func isNoPoller(err error) bool {
	var fp *serviceerror.FailedPrecondition
	return errors.As(err, &fp) && strings.Contains(fp.Message, "no poller seen")
}

// isDeadlineExceeded reports whether a Temporal call ran out of time.
func isDeadlineExceeded(err error) bool {
	var de *serviceerror.DeadlineExceeded
	return errors.As(err, &de) || errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded
}

// queryTimeout bounds a query of a run's state: longer than a workflow
// task's timeout (10 s), after which an abandoned task goes to another
// worker.
const queryTimeout = 25 * time.Second

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

// ListFilter narrows a run list.
type ListFilter struct {
	Status approval.Status
	// RequestedBy, when set, lists only the runs this user requested.
	RequestedBy approval.UserID
}

// ListRuns lists the runs of workspace ws, newest first, filtered. The
// status a run's search attribute holds is the workflow's own; a workflow
// that Temporal terminated or timed out keeps its last one there, so the
// execution status decides first: such runs are listed as terminated.
func (c *Client) ListRuns(ctx context.Context, ws string, f ListFilter) ([]RunSummary, error) {
	query := fmt.Sprintf("WorkflowType = '%s' AND %s = '%s'", workflows.RunWorkflowName, workflows.WorkspaceKey.GetName(), ws)
	switch {
	case f.Status == approval.StatusTerminated:
		query += " AND ExecutionStatus IN ('Terminated', 'TimedOut', 'Failed', 'Canceled')"
	case f.Status.Final():
		query += fmt.Sprintf(" AND %s = '%s' AND ExecutionStatus = 'Completed'", workflows.StatusKey.GetName(), f.Status)
	case f.Status != "":
		query += fmt.Sprintf(" AND %s = '%s' AND ExecutionStatus = 'Running'", workflows.StatusKey.GetName(), f.Status)
	}
	if f.RequestedBy != "" {
		query += fmt.Sprintf(" AND %s = '%s'", workflows.RequestedByKey.GetName(), quoteQuery(string(f.RequestedBy)))
	}
	return c.list(ctx, query)
}

// quoteQuery escapes a value for a single-quoted visibility query string.
func quoteQuery(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `'`, `\'`)
}

// StuckQuery is the visibility query for runs that have waited for people
// since before cutoff. README shows it, `gatehouse runs --stuck` runs it, and
// the Temporal Web UI accepts it as is.
func StuckQuery(cutoff time.Time) string {
	return fmt.Sprintf("ExecutionStatus = 'Running' AND %s IN ('pending_approval', 'changes_requested', 'awaiting_signoff') AND %s < '%s'",
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
			status := approval.Status(searchAttrString(sa, workflows.StatusKey.GetName()))
			switch e.GetStatus() {
			case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW:
			default:
				status = approval.StatusTerminated
			}
			s := RunSummary{
				ID:               e.GetExecution().GetWorkflowId(),
				Workspace:        searchAttrString(sa, workflows.WorkspaceKey.GetName()),
				Environment:      searchAttrString(sa, workflows.EnvironmentKey.GetName()),
				Status:           status,
				RequestedBy:      searchAttrString(sa, workflows.RequestedByKey.GetName()),
				CreatedAt:        e.GetStartTime().AsTime(),
				PendingSince:     searchAttrTime(sa, workflows.PendingSinceKey.GetName()),
				Deadline:         searchAttrTime(sa, workflows.DeadlineKey.GetName()),
				PendingApprovers: searchAttrStrings(sa, workflows.PendingApproversKey.GetName()),
			}
			if status == approval.StatusTerminated {
				s.PendingSince, s.Deadline, s.PendingApprovers = nil, nil, nil
			}
			out = append(out, s)
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 || len(out) >= maxListed {
			return out, nil
		}
	}
}

// DecisionRequest is a person's decision on a run, from any channel.
type DecisionRequest struct {
	Workspace string
	RunID     string
	Kind      approval.DecisionKind
	// Actor is who decides, as the channel authenticated them.
	Actor     approval.Identity
	Comment   string
	ReasonIDs []string              // approve and cancel only: limit to these reasons
	Plan      *approval.Plan        // revise_plan only: the whole new plan
	Cost      *approval.CostSummary // revise_plan only: its estimate, if any
	// IdempotencyKey is the caller's key, if any: a retry with the same key
	// and body counts once; the same key for another request is refused.
	IdempotencyKey string
	Channel        string // where the decision came from, e.g. "api"
}

// Decide carries a decision to the run d names. Where the decision needs
// nothing of the run but its id (every kind but revise_plan), it is one
// Update: the workflow's validator makes every check the gateway would have
// made on the run read first (the run is in d.Workspace, the decision is
// allowed, the actor is who the worker's config says), and the run is read
// once, afterwards, to answer. A failure the workflow did not put in words
// (no such workflow, or one that is not a run) is answered by reading the
// run, so it reads as it would have: not found, or finished.
//
// The caller must already know that d.Actor may read the workspace: a run
// it may read only because it concerns the actor needs DecideOn on the run
// as read.
func (c *Client) Decide(ctx context.Context, d DecisionRequest) (approval.Run, error) {
	if d.Kind == approval.DecisionRevisePlan {
		// The revised plan is evaluated against the run's requester.
		run, err := c.GetRun(ctx, d.Workspace, d.RunID)
		if err != nil {
			return approval.Run{}, err
		}
		return c.DecideOn(ctx, run, d)
	}
	out, err := c.decide(ctx, d)
	c.Metrics.Decision(d.Kind, d.Channel, outcome(err))
	return out, err
}

func (c *Client) decide(ctx context.Context, d DecisionRequest) (approval.Run, error) {
	if !ValidRunID(d.RunID) {
		return approval.Run{}, approval.Errorf(approval.CodeNotFound, "run %q not found in workspace %q", d.RunID, d.Workspace)
	}
	req := approval.Request{Workspace: d.Workspace, Actor: d.Actor, Comment: d.Comment, ReasonIDs: d.ReasonIDs, Channel: d.Channel}
	_, update, arg, err := c.decisionUpdate(approval.Run{}, d, req)
	if err != nil {
		return approval.Run{}, err
	}
	req.ID, req.Key = updateID(update, d, arg)
	res, err := c.send(ctx, d, update, arg, req)
	if err == nil {
		return c.readAfter(ctx, approval.Run{ID: d.RunID, Workspace: d.Workspace}, res), nil
	}
	if refused := updateError(d.RunID, err); approval.ErrorCode(refused) != "" && !isClosed(err) {
		return approval.Run{}, refused // the workflow's own answer
	}
	// No run took the Update: read what is there, and answer as for a run
	// read first. A finished run is checked as DecideOn checks it, which
	// sends nothing.
	run, rerr := c.GetRun(ctx, d.Workspace, d.RunID)
	switch {
	case rerr != nil:
		return approval.Run{}, rerr
	case run.Status.Final():
		return c.decideOn(ctx, run, d)
	}
	return approval.Run{}, updateError(d.RunID, err)
}

// DecideOn carries a decision to a run the caller has just read. It first
// checks the decision against that state with the same rules the workflow's
// validator uses, so callers get "invalid" and "forbidden" answers before
// anything is sent; then it sends it as Decide does. It returns the run as
// it stands afterwards. A finished run cannot take Updates: that is a
// conflict.
func (c *Client) DecideOn(ctx context.Context, run approval.Run, d DecisionRequest) (approval.Run, error) {
	out, err := c.decideOn(ctx, run, d)
	c.Metrics.Decision(d.Kind, d.Channel, outcome(err))
	return out, err
}

// outcome names how a decision went, for metrics: accepted, or the
// refusal's domain code, or error.
func outcome(err error) string {
	switch {
	case err == nil:
		return "accepted"
	case approval.ErrorCode(err) != "":
		return string(approval.ErrorCode(err))
	}
	return "error"
}

func (c *Client) decideOn(ctx context.Context, run approval.Run, d DecisionRequest) (approval.Run, error) {
	req := approval.Request{Workspace: run.Workspace, Actor: d.Actor, Comment: d.Comment, ReasonIDs: d.ReasonIDs, Channel: d.Channel}
	check, update, arg, err := c.decisionUpdate(run, d, req)
	if err != nil {
		return approval.Run{}, err
	}
	// Conflicts are left to the workflow: a retry of an Update that already
	// moved the run on must get that Update's original answer.
	req.ID, req.Key = updateID(update, d, arg)
	if err := check(req); err != nil && approval.ErrorCode(err) != approval.CodeConflict && approval.ErrorCode(err) != approval.CodeRateLimited {
		return approval.Run{}, err
	}
	if run.Status.Final() {
		return approval.Run{}, approval.Errorf(approval.CodeConflict, "run is %s: it takes no more decisions", run.Status)
	}
	res, err := c.send(ctx, d, update, arg, req)
	if err != nil {
		return approval.Run{}, updateError(d.RunID, err)
	}
	return c.readAfter(ctx, run, res), nil
}

// send signs a decision and sends it as an Update under the request's ID
// (see updateID), and waits for the workflow's answer. Its error is
// Temporal's, for updateError to put in words.
func (c *Client) send(ctx context.Context, d DecisionRequest, update string, arg any, req approval.Request) (workflows.DecisionResult, error) {
	if c.keys == nil {
		return workflows.DecisionResult{}, errors.New("decide: this gateway has no signing keys")
	}
	req.IssuedAt = time.Now().UTC()
	arg = withRequest(arg, req)
	payload, err := workflows.DecisionPayload(update, d.RunID, req.ID, arg)
	if err != nil {
		return workflows.DecisionResult{}, err
	}
	req.Signature = c.keys.Sign(payload)
	opts := client.UpdateWorkflowOptions{
		WorkflowID:   d.RunID,
		UpdateID:     req.ID,
		UpdateName:   update,
		Args:         []any{withRequest(arg, req)},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	}
	for attempt := 1; ; attempt++ {
		res, err := c.update(ctx, opts)
		// An Update that reaches a workflow run as it continues as new finds
		// it closed; the run itself lives on in the next workflow run, so
		// the Update is sent again (same ID: it still applies once).
		if err != nil && isClosed(err) && attempt < 5 && c.stillRunning(ctx, d.RunID) {
			continue
		}
		return res, err
	}
}

// readAfter reads the run after a decision was recorded: by query while it
// runs (the Update's answer says whether it still does), else from its
// result. The decision stands whatever happens here, so a read that fails
// (a query caught by a restarting worker) is tried again, and failing that
// the caller gets the run as read before (or only its id, when it was not
// read) with the status the Update answered, not an error.
func (c *Client) readAfter(ctx context.Context, before approval.Run, res workflows.DecisionResult) approval.Run {
	read := func() (approval.Run, error) {
		if res.Status.Final() {
			return c.GetRun(ctx, before.Workspace, before.ID)
		}
		return c.queryState(ctx, before.ID)
	}
	for _, wait := range []time.Duration{0, 100 * time.Millisecond, 400 * time.Millisecond, time.Second} {
		select {
		case <-ctx.Done():
			return withStatus(before, res.Status)
		case <-time.After(wait):
		}
		if run, err := read(); err == nil {
			return run
		}
	}
	return withStatus(before, res.Status)
}

func withStatus(run approval.Run, status approval.Status) approval.Run {
	if status != "" {
		run.Status = status
	}
	return run
}

// withRequest puts req into an Update argument.
func withRequest(arg any, req approval.Request) any {
	if rp, ok := arg.(workflows.RevisePlanRequest); ok {
		rp.Request = req
		return rp
	}
	return req
}

// updateID derives a decision's Update ID, and the digest of its key. With
// an idempotency key, the ID is a hash of the caller, the action, the key and
// the body: a retry lands on the same Update (and gets its first answer),
// while another caller's or another body's request under the same key is a
// new Update, which the workflow refuses as a reused key (422) instead of
// swallowing it. Without a key every request is new, under a random ID.
func updateID(update string, d DecisionRequest, arg any) (id, key string) {
	if d.IdempotencyKey == "" {
		return randomDecisionID(), ""
	}
	body, _ := json.Marshal(arg) // plain data: cannot fail
	h := sha256.New()
	for _, part := range []string{string(d.Actor.ID), update, d.IdempotencyKey} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(body)
	keySum := sha256.Sum256([]byte("gatehouse-idempotency-key\x00" + d.IdempotencyKey))
	return "d-" + hex.EncodeToString(h.Sum(nil)[:20]), hex.EncodeToString(keySum[:16])
}

// randomDecisionID is a fresh decision's ID: "d-" and 80 random bits in
// lowercase base32, 18 characters. Temporal writes an Update's ID four times
// into history and the run keeps it in its result, so a UUID's 38
// characters cost a two-approval run about 200 bytes more; 80 bits still
// make two of one run's decisions colliding (the second would be answered
// as a retry of the first) as likely as 2^-80 per pair. Only the IDs of
// requests without an idempotency key are random: derived ones keep their
// form, so a retry across an upgrade still lands on its first Update.
func randomDecisionID() string {
	var b [10]byte  // a multiple of 5 bytes: base32 without padding
	rand.Read(b[:]) // never fails (crypto/rand)
	return "d-" + strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

func (c *Client) update(ctx context.Context, opts client.UpdateWorkflowOptions) (workflows.DecisionResult, error) {
	h, err := c.temporal.UpdateWorkflow(ctx, opts)
	if err != nil {
		return workflows.DecisionResult{}, err
	}
	var out workflows.DecisionResult
	if err := h.Get(ctx, &out); err != nil {
		return workflows.DecisionResult{}, err
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
// decision kind. A revised plan is evaluated here, on the whole plan, against
// the workspace's rules and steps.
func (c *Client) decisionUpdate(run approval.Run, d DecisionRequest, req approval.Request) (func(approval.Request) error, string, any, error) {
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
	case approval.DecisionSupersede:
		return run.CheckSupersede, workflows.UpdateSupersede, req, nil
	case approval.DecisionRenotify:
		// The rate limit is the workflow's to decide, on its own clock.
		return func(req approval.Request) error { return run.CheckRenotify(req, time.Time{}) }, workflows.UpdateRenotify, req, nil
	case approval.DecisionRevisePlan:
		if d.Plan == nil {
			return nil, "", nil, approval.Errorf(approval.CodeInvalid, "plan: required")
		}
		ws, ok := c.config.Workspace(run.Workspace)
		if !ok {
			return nil, "", nil, approval.Errorf(approval.CodeNotFound, "workspace %q not found", run.Workspace)
		}
		fresh := approval.Evaluate(ws.Workspace, *d.Plan, d.Cost, run.RequestedBy, c.config.Directory())
		return run.CheckRevisePlan, workflows.UpdateRevisePlan,
			workflows.RevisePlanRequest{Request: req, Plan: workflows.InputPlan{PlanSummary: d.Plan.PlanSummary}, Cost: d.Cost, Reasons: fresh}, nil
	}
	return nil, "", nil, approval.Errorf(approval.CodeInvalid, "decision: unknown kind %q", d.Kind)
}

// updateError maps what Temporal says about an Update back to domain errors.
func updateError(id string, err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch code := approval.Code(appErr.Type()); code {
		case approval.CodeInvalid, approval.CodeForbidden, approval.CodeConflict, approval.CodeNotFound, approval.CodeRateLimited, approval.CodeUnprocessable:
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
