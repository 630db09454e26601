// Package workflows holds the run workflow: one Terraform/OpenTofu plan on its
// way through approval to apply. The workflow is deterministic: it keeps the
// run's state (an approval.Run), lets Update handlers validate and record
// decisions on it with the pure rules of package approval, waits on durable
// timers, and leaves every side effect to activities.
package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/signing"
)

// Names under which the workflow and its messages are known to clients.
const (
	RunWorkflowName      = "GatehouseRun"
	QueryState           = "state"
	UpdateApprove        = "approve"
	UpdateReject         = "reject"
	UpdateCancel         = "cancel"
	UpdateRevoke         = "revoke"
	UpdateRequestChanges = "request_changes"
	UpdateRevisePlan     = "revise_plan"
	UpdateBypass         = "bypass"
	UpdateRenotify       = "renotify"
	UpdateSupersede      = "supersede"
)

// DefaultApplyTimeout bounds an apply when the workspace does not say.
const DefaultApplyTimeout = time.Hour

// DefaultMaxWakeups is how many times one workflow run wakes up (for a
// reminder, an escalation or a decision) before it continues as new. Each
// wake-up adds a bounded number of history events, so this bounds the
// history of a run that waits for weeks; README states the figure.
const DefaultMaxWakeups = 150

// versionDurableTime guards the durable-time behaviour (reminders,
// escalation, asynchronous notices, rich search attributes, continue-as-new)
// so runs started before it replay as they ran.
const versionDurableTime = "durable-time"

// versionReviseSigned guards, in runs started before versionIntegrity, the
// revise_plan handler: Updates recorded before it are evaluated from the
// resources they carry, as they were; newer ones take the gateway's signed
// reasons.
const versionReviseSigned = "revise-signed"

// versionIntegrity guards gate integrity: the run's reasons come evaluated
// and signed in its input (no plan, no directory), the input's signature is
// checked, and policies are evaluated by EvaluatePolicies. Runs started
// before it evaluate their rules from the resources and directory in their
// input, as they did.
const versionIntegrity = "integrity"

// Runner is the run workflow with what its Update validators need from the
// worker: the keys that verify the gateway's signatures and the check of
// actors against the worker's config. Neither reaches workflow history, and
// validators do not run on replay, so keys can rotate and users change
// under open runs.
type Runner struct {
	Keys *signing.Keys
	// Verify says whether an actor is someone the worker's config could
	// have signed in (config.Verify): a config user exactly as configured,
	// or an SSO identity the oidc mappings could give. An actor it refuses
	// decides nothing; without it no one does.
	Verify func(approval.Identity) error
}

// RunInput is everything a run starts from. It is a snapshot: later config
// changes do not alter a run in flight. It carries no secrets, no plan
// resources and no copy of the user directory: the gateway evaluated the
// workspace's rules on the whole plan (Reasons), and the input is signed,
// so a workflow started by anyone else is refused.
type RunInput struct {
	// Workspace is the workspace's settings; its rules and steps are
	// already evaluated into Reasons and not repeated.
	Workspace   approval.Workspace `json:"workspace"`
	RequestedBy approval.Identity  `json:"requested_by"`
	// SubmittedBy is the automation that submitted the run on behalf of
	// RequestedBy, if any.
	SubmittedBy   *approval.Identity    `json:"submitted_by,omitempty"`
	Message       string                `json:"message,omitempty"`
	Plan          InputPlan             `json:"plan"`
	Cost          *approval.CostSummary `json:"cost,omitempty"`
	Reasons       []approval.Reason     `json:"reasons,omitempty"`
	ConfigVersion string                `json:"config_version,omitempty"`
	ApplyTimeout  time.Duration         `json:"apply_timeout,omitempty"`
	// MaxWakeups overrides DefaultMaxWakeups (tests set it low).
	MaxWakeups int `json:"max_wakeups,omitempty"`
	// Origin is where the plan comes from (ref, binary plan, trigger).
	Origin *approval.Origin `json:"origin,omitempty"`
	// Planning: Gatehouse plans the run itself (terraform workspaces
	// started without a plan); PlanTimeout bounds one plan.
	Planning    bool          `json:"planning,omitempty"`
	PlanTimeout time.Duration `json:"plan_timeout,omitempty"`
	// Replan plans again just before the apply (replan_before_apply).
	Replan bool `json:"replan,omitempty"`
	// ChangedSince and Paths: the run goes on only if a file under one of
	// the path globs changed since that commit (GitHub deliveries).
	ChangedSince string   `json:"changed_since,omitempty"`
	Paths        []string `json:"paths,omitempty"`
	// LockRetry overrides how often a queued run asks for the lock again
	// (tests set it low).
	LockRetry time.Duration `json:"lock_retry,omitempty"`
	// Lean is the version of versionLean the starter chose for the run
	// (StartLean), which the run then follows without a version marker:
	// a marker costs every run two history events (the marker and the SDK's
	// TemporalChangeVersion upsert) and a visibility write. Runs started
	// without it (by an older gateway, or before it) ask GetVersion, as
	// they always did. It is not signed, so that gateways and workers can
	// be rolled in either order (a worker that predates it verifies the
	// signature over the fields it knows, and picks leanV4 with a marker,
	// which behaves the same); a value other than those a worker knows is
	// refused, or waits for a worker that knows it (see leanOf).
	Lean workflow.Version `json:"lean,omitempty"`
	// IssuedAt and Signature are the gateway's: see StartPayload.
	IssuedAt  time.Time `json:"issued_at"`
	Signature string    `json:"signature,omitempty"`
	// Resume carries a run across continue-as-new.
	Resume *Resume `json:"resume,omitempty"`

	// Directory is read only from runs started before versionIntegrity.
	Directory []approval.Identity `json:"directory,omitempty"`
}

// InputPlan is the plan's summary. Resources is read only from runs started
// before versionIntegrity, which carried the resource list.
type InputPlan struct {
	approval.PlanSummary
	Resources []approval.Resource `json:"resources,omitempty"`
}

// StartPayload is what the gateway signs to start a run: the workflow ID and
// the input without its signature. Resume is never signed: a run may resume
// only from its own continue-as-new.
func StartPayload(workflowID string, in RunInput) ([]byte, error) {
	in.Signature, in.Resume, in.Lean = "", nil, 0
	data, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encode run input: %w", err)
	}
	return append([]byte("start\x00"+workflowID+"\x00"), data...), nil
}

// DecisionPayload is what the gateway signs for a decision: the Update's
// name and ID, the run, and the argument without its signature.
func DecisionPayload(update, workflowID, updateID string, arg any) ([]byte, error) {
	switch a := arg.(type) {
	case approval.Request:
		a.Signature = ""
		arg = a
	case RevisePlanRequest:
		a.Request.Signature = ""
		arg = a
	default:
		return nil, fmt.Errorf("sign %s: unexpected argument %T", update, arg)
	}
	data, err := json.Marshal(arg)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", update, err)
	}
	return append([]byte("update\x00"+update+"\x00"+workflowID+"\x00"+updateID+"\x00"), data...), nil
}

// DecisionResult is what an Update answers: small, because every byte of it
// is written to history. Callers read the run itself with the state query.
type DecisionResult struct {
	DecisionID string          `json:"decision_id"`
	Status     approval.Status `json:"status"`
}

// Resume is the state a run hands to its next workflow run when it continues
// as new: the whole run state (deadlines, approvals, decisions and so the
// Update IDs already applied) and the notice bookkeeping.
type Resume struct {
	Run       approval.Run `json:"run"`
	Announced []string     `json:"announced,omitempty"`
	Notices   int          `json:"notices"`
	// Audit is how far the audit trail was taken (nil from runs before
	// versionAudit, whose next workflow run backfills the trail).
	Audit *approval.AuditMark `json:"audit,omitempty"`
}

// RevisePlanRequest is the argument of the revise_plan Update: the requester
// and the summary of the plan that replaces the current one.
type RevisePlanRequest struct {
	Request approval.Request `json:"request"`
	// Plan is the revised plan's summary; Plan.Resources is set only in
	// Updates recorded before versionIntegrity, which carried the list.
	Plan InputPlan             `json:"plan"`
	Cost *approval.CostSummary `json:"cost,omitempty"`
	// Reasons are the workspace's rules and steps evaluated on the whole
	// revised plan, by the gateway that signed the request.
	Reasons []approval.Reason `json:"reasons"`
}

// Run is the run workflow: it waits for people while the run waits for
// them, applies once when everything before apply is approved, and ends when
// the run reaches a final status. It returns the final run state, so a
// finished run stays readable from its result without a worker.
//
// Its input and result are pointers (the JSON is the same) for the memory of
// waiting runs: the SDK calls Run through reflection on the run's own
// goroutine, which sits in Run for as long as the run waits, and Go shrinks
// a waiting goroutine's stack only while what it uses stays under a quarter
// of it. By value, the input and the result took about 2.3 KB of frames
// there, so a waiting run kept a 32 KiB stack; by pointer it keeps 16 KiB.
// For the same reason the steps before and after waiting (newRun, finish)
// are functions of their own, and Run holds nothing large.
func (w Runner) Run(ctx workflow.Context, in *RunInput) (*approval.Run, error) {
	r := newRun(ctx, in, w)
	if err := r.registerHandlers(ctx); err != nil {
		return nil, err
	}
	r.keepVisible(ctx)
	r.startDeliverer(ctx)
	r.publish(ctx)
	r.startExternal(ctx)

	for !r.state.Done() {
		r.sendNotices(ctx)
		switch {
		case r.state.Status == approval.StatusPlanning:
			r.planRun(ctx)
		case r.state.Status == approval.StatusEvaluatingPolicy:
			r.evaluatePolicy(ctx)
		case r.state.Status == approval.StatusApproved && r.state.Mode == "":
			r.apply(ctx) // a run from before modes: it applies as it did
		case r.state.Status == approval.StatusApproved:
			r.deliver(ctx)
		case r.state.Status == approval.StatusQueued && r.historyFull(ctx):
			ok, err := r.readyToContinue(ctx)
			if err != nil {
				return &r.state, err
			}
			if ok {
				return nil, r.continueAsNew(ctx)
			}
		case r.state.Status == approval.StatusQueued:
			r.waitInQueue(ctx)
		case r.state.Status.Waiting() && r.historyFull(ctx):
			ok, err := r.readyToContinue(ctx)
			if err != nil {
				return &r.state, err
			}
			if ok {
				return nil, r.continueAsNew(ctx)
			}
		case r.state.Status.Waiting():
			if err := r.waitForPeople(ctx); err != nil {
				return &r.state, err
			}
		default:
			return &r.state, fmt.Errorf("run is %s: nothing moves it on", r.state.Status)
		}
	}
	if err := r.finish(ctx); err != nil {
		return &r.state, err
	}
	return &r.state, nil
}

// finish ends a run that reached a final status: it frees the workspace,
// withdraws the ticket, sends the last notices and lets in-flight Updates
// reply. It is a step of its own, not part of Run, so that its locals (two
// notices by value) are not on the stack of every waiting run: see Run.
func (r *run) finish(ctx workflow.Context) error {
	r.releaseLock(ctx) // whatever ended the run, the workspace may apply again
	r.withdrawTicket(ctx)
	if r.audited {
		// The last changes ride on the finished notice.
		r.outbox = append(r.outbox, activities.Event{Kind: activities.EventFinished})
		r.sendNotices(ctx)
	} else {
		r.sendNotices(ctx)
		r.send(ctx, activities.Event{Kind: activities.EventFinished})
	}
	r.publish(ctx)

	// Let Updates that arrived with the final decision reply, and notices
	// land, before we close.
	if err := workflow.Await(ctx, r.drained(ctx)); err != nil {
		return err
	}
	if r.lean {
		r.upsert(ctx) // what the last workflow task changed
	}
	return nil
}

// run is the workflow's state and its steps.
type run struct {
	in     *RunInput // as the SDK decoded it: shared, not copied
	runner Runner
	state  approval.Run
	// legacy marks runs started before versionDurableTime: they keep the
	// behaviour they started with (see legacy.go).
	legacy bool
	// preIntegrity marks runs started before versionIntegrity.
	preIntegrity bool
	// published is what the search attributes say now; upserted, that
	// this run (this execution) has upserted them once.
	published visibility
	upserted  bool
	// announced holds "reason@round" for every reason whose approvers were
	// asked, so each opening is announced once.
	announced map[string]bool
	// outbox holds notices that handlers queued for the main loop to send.
	outbox []activities.Event
	// notices counts notices sent over the run's whole life, for stable ids.
	notices int
	// delivering counts notices still being delivered.
	delivering int
	// wakeups counts wake-ups in this workflow run, for continue-as-new.
	wakeups int
	// thawed and replanned mark the freeze check and the re-plan as done
	// for the current approval; both start over when the run goes back to
	// people.
	thawed, replanned bool
	// noticeMu delivers notices one at a time (nil in runs started before
	// versionSerialNotices, which deliver them side by side).
	noticeMu workflow.Mutex
	// notifiedStatus is the status the run's live views last heard of.
	notifiedStatus approval.Status
	// signals carries external decisions (nil unless the workspace
	// approves externally); externalBusy counts ticket work in flight.
	signals      workflow.ReceiveChannel
	externalBusy int
	// audited marks runs on versionAudit: every change becomes an event
	// of the audit trail; auditMark is how far the trail has been taken.
	audited   bool
	auditMark approval.AuditMark
	// lean marks runs on versionLean (see lean.go); stale says the search
	// attributes lag the run; pending holds the notices queued for the
	// deliverer; changes counts publishes and queued notices, and
	// localBusy the local activities running, for settle.
	lean, stale bool
	pending     []activities.Event
	changes     int
	localBusy   int
	// upserter and deliverer are the coroutines that leave a settled task
	// with its upsert and its notices (see whenSettled).
	upserter, deliverer *settled
	// answeredIn names the last workflow task that answered an Update (on
	// versions before leanV3 also the start's) by the history's length
	// when it started: its notices are activities. startedIn names the
	// start's task on leanV3, whose notices are recorded locally.
	answeredIn, startedIn int
	// leanAt is the run's version of versionLean (0 before it).
	leanAt workflow.Version
	// wakeTimer is the timer waitForPeople waits on, for wakeAt; cancelWake
	// cancels it (see awaitWake).
	wakeTimer  workflow.Future
	wakeAt     time.Time
	cancelWake workflow.CancelFunc
}

// versionSerialNotices guards delivering notices one at a time, in order,
// and the decided and updated notices that keep a Slack message current.
const versionSerialNotices = "serial-notices"

// versionAudit guards the audit trail: runs on it turn every change into an
// event of the notice stream (see audit.go), and their notices of a
// decision or a status change no longer depend on a Slack message existing.
const versionAudit = "audit"

// versionLean guards the run's lighter use of Temporal: one version marker
// standing for every version before it, the apply lock taken and given back
// in local activities, and the search attributes upserted once per workflow
// task (see keepVisible). Runs started before it replay as they ran. A
// run whose input names its version (RunInput.Lean, StartLean) records
// no marker at all.
const versionLean = "lean"

// leanV2 is versionLean's second version, named versionLean2 in the trail:
// the wait for people keeps one timer while its instant stays put
// (awaitWake). leanV3, versionLean3, records the start's notice (its audit
// entries and log line) in a local activity of the start's own task, and
// leaves only the workspace's channels, if it has any, to an activity.
// leanV4, versionLean4, starts the coroutines that upsert and deliver
// only when there is something to upsert or deliver, and lets them end
// once it is done: a run waiting for people keeps no coroutine but its
// own in the worker's cache.
const (
	leanV2       workflow.Version = 2
	versionLean2                  = "lean-2"
	leanV3       workflow.Version = 3
	versionLean3                  = "lean-3"
	leanV4       workflow.Version = 4
	versionLean4                  = "lean-4"
)

// StartLean is the version of versionLean the starter writes into a new
// run's input (RunInput.Lean). It stays leanV4 until a later version's
// workers are everywhere: a worker that does not know the version a run
// asks for holds the run (see leanOf) until one that does polls.
const StartLean = leanV4

// leanOf is the run's version of versionLean: the one its input names, or,
// for a run started without one, what GetVersion recorded (replay) or
// records now (a start by an older gateway).
func leanOf(ctx workflow.Context, in *RunInput) workflow.Version {
	switch {
	case in.Lean == 0: // not named
		return workflow.GetVersion(ctx, versionLean, workflow.DefaultVersion, leanV4)
	case in.Lean > leanV4:
		// As GetVersion does for a version newer than the code: the task
		// fails, and is retried until a worker that knows it takes it. The
		// run neither goes on under behaviour it did not ask for nor ends.
		panic(fmt.Sprintf("run input asks for workflow version %s-%d, newer than this worker knows (%s-%d)", versionLean, in.Lean, versionLean, leanV4))
	}
	// leanV4 itself, or an older version no gateway ever wrote: verifyStart
	// refuses the latter, and the run runs on leanV4 until it ends.
	return leanV4
}

func newRun(ctx workflow.Context, in *RunInput, w Runner) *run {
	if in == nil {
		in = &RunInput{} // a start with no input is unsigned, and refused as such
	}
	r := &run{
		in:        in,
		runner:    w,
		announced: map[string]bool{},
		// No task is either until one is: a history's length is never
		// negative.
		answeredIn: -1,
		startedIn:  -1,
	}
	if lean := leanOf(ctx, in); lean != workflow.DefaultVersion {
		// Every version before lean is implied, without a marker of its own.
		// The deliverer (lean.go) serialises the notices. The starter
		// waits for the first task.
		r.lean, r.audited, r.leanAt = true, true, lean
		if lean >= leanV3 {
			r.startedIn = workflow.GetInfo(ctx).GetCurrentHistoryLength()
		} else {
			r.answeredIn = workflow.GetInfo(ctx).GetCurrentHistoryLength()
		}
	} else {
		r.legacy = workflow.GetVersion(ctx, versionDurableTime, workflow.DefaultVersion, 1) == workflow.DefaultVersion
		r.preIntegrity = r.legacy || workflow.GetVersion(ctx, versionIntegrity, workflow.DefaultVersion, 1) == workflow.DefaultVersion
		if !r.legacy && workflow.GetVersion(ctx, versionSerialNotices, workflow.DefaultVersion, 1) == 1 {
			r.noticeMu = workflow.NewMutex(ctx)
		}
		r.audited = r.noticeMu != nil && workflow.GetVersion(ctx, versionAudit, workflow.DefaultVersion, 1) == 1
	}
	continued := workflow.GetInfo(ctx).ContinuedExecutionRunID != ""
	if in.Resume != nil && (continued || r.preIntegrity) {
		r.state = in.Resume.Run
		r.notices = in.Resume.Notices
		if in.Resume.Audit != nil {
			r.auditMark = *in.Resume.Audit
		}
		for _, a := range in.Resume.Announced {
			r.announced[a] = true
		}
		return r
	}
	reasons := in.Reasons
	if r.preIntegrity {
		plan := approval.Plan{PlanSummary: in.Plan.PlanSummary, ResourceChanges: in.Plan.Resources}
		reasons = approval.Evaluate(in.Workspace, plan, in.Cost, in.RequestedBy, in.Directory)
	}
	r.state = approval.NewRun(approval.NewRunParams{
		ID:            workflow.GetInfo(ctx).WorkflowExecution.ID,
		Workspace:     in.Workspace,
		RequestedBy:   in.RequestedBy,
		SubmittedBy:   in.SubmittedBy,
		Message:       in.Message,
		Plan:          in.Plan.PlanSummary,
		Cost:          in.Cost,
		Reasons:       reasons,
		ConfigVersion: in.ConfigVersion,
		Planning:      in.Planning,
		Origin:        in.Origin,
	}, workflow.Now(ctx))
	if !r.preIntegrity {
		if why := r.verifyStart(ctx); why != "" {
			r.state.Refuse(why, workflow.Now(ctx))
		}
	}
	return r
}

// verifyStart checks, once, that the gateway signed this input; the answer
// is recorded in history, so replay does not need the keys and rotating
// them cannot change it. It returns why the input is refused, or "".
func (r *run) verifyStart(ctx workflow.Context) string {
	info := workflow.GetInfo(ctx)
	if r.in.Resume != nil {
		return "refused: the run was started with resume state, which only its own continue-as-new may carry"
	}
	if r.in.Lean != 0 && r.in.Lean < leanV4 {
		return fmt.Sprintf("refused: the run's input asks for workflow version %s-%d, which no gateway writes", versionLean, r.in.Lean)
	}
	var why string
	check := func(workflow.Context) any {
		if r.runner.Keys == nil {
			return "refused: this worker has no signing keys to verify the run's input"
		}
		//workflowcheck:ignore runs inside a side effect, whose answer is recorded and replayed
		payload, err := StartPayload(info.WorkflowExecution.ID, *r.in)
		if err != nil {
			return "refused: " + err.Error()
		}
		if err := r.runner.Keys.Verify(payload, r.in.Signature); err != nil {
			return "refused: the run's input is " + err.Error() + ": runs start only through the gateway"
		}
		if age := info.WorkflowStartTime.Sub(r.in.IssuedAt); age > signing.MaxAge || age < -signing.MaxAge {
			return fmt.Sprintf("refused: the run's input was signed at %s, too far from its start", r.in.IssuedAt.UTC().Format(time.RFC3339))
		}
		return ""
	}
	if err := workflow.SideEffect(ctx, check).Get(&why); err != nil {
		return "refused: " + err.Error()
	}
	return why
}

// evaluatePolicy checks the plan against the workspace's Rego policies in an
// activity (policies may use non-deterministic built-ins) and lets the
// result decide: a denial or an evaluation error fails the run closed before
// anyone is asked; requirements become policy reasons. Only runs whose
// workspace has policies reach this step, and runs started before policies
// existed have none in their input, so it needs no version guard.
func (r *run) evaluatePolicy(ctx workflow.Context) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
	in := activities.PolicyInput{
		RunID: r.state.ID, Workspace: r.state.Workspace, Environment: r.state.Environment,
		RequestedBy: string(r.state.RequestedBy.ID), Message: r.state.Message, Tags: r.in.Workspace.Tags,
		PlanSHA256: r.state.Plan.SHA256,
	}
	if r.state.Cost != nil {
		in.CostSHA256 = r.state.Cost.SHA256
	}
	var a *activities.Activities
	var out activities.PolicyOutcome
	var err error
	if r.preIntegrity {
		err = workflow.ExecuteActivity(actx, a.EvaluatePolicy, in).Get(ctx, &out.Result)
		out.Reasons = approval.PolicyReasons(r.in.Workspace, r.state.Plan, out.Result, r.state.RequestedBy, r.in.Directory)
	} else {
		err = workflow.ExecuteActivity(actx, a.EvaluatePolicies, activities.PoliciesInput{PolicyInput: in, ChangesDigest: r.state.Plan.ChangesDigest}).Get(ctx, &out)
	}
	switch {
	case temporal.IsCanceledError(err):
		r.cancelledInTemporal(ctx)
		return
	case err != nil:
		out.Result = approval.PolicyResult{Policies: r.state.Policies, Error: "policy evaluation failed: " + rootMessage(err)}
		out.Reasons = nil
	}
	// A run decided while its policies ran (cancelled) stays decided: the
	// late result is recorded nowhere and revives nothing.
	if err := r.state.ApplyPolicy(out.Result, out.Reasons, workflow.Now(ctx)); err != nil {
		workflow.GetLogger(ctx).Info("policy result arrived after the run was decided", "status", r.state.Status)
	}
	r.publish(ctx)
}

// waitForPeople waits, on a durable timer, until something changes or comes
// due: a decision moves the run, a new stage or round moves the clock, a
// handler queued news, or a reminder, an escalation or the deadline is due.
// A passed deadline fails closed: the run ends timed_out and never applies.
func (r *run) waitForPeople(ctx workflow.Context) error {
	if r.legacy {
		return r.waitForPeopleV0(ctx)
	}
	status, wake := r.state.Status, r.state.NextWake()
	changed := func() bool {
		return r.state.Status != status || !r.state.NextWake().Equal(wake) || len(r.outbox) > 0 || len(r.unannounced()) > 0
	}
	fired := true
	if wait := wake.Sub(workflow.Now(ctx)); wait > 0 {
		ok, err := r.awaitWake(ctx, wake, changed)
		switch {
		case temporal.IsCanceledError(err):
			r.cancelledInTemporal(ctx)
			return nil
		case err != nil:
			return fmt.Errorf("wait for decisions: %w", err)
		}
		fired = !ok
	}
	r.wakeups++
	if fired && !changed() {
		r.fireDue(ctx)
	}
	return nil
}

// awaitWake waits until changed holds or wake comes, and reports whether
// changed held first. Runs on leanV2 keep one timer for as long as
// the instant they wait for stays the same: a decision that wakes the run
// and leaves its next reminder or deadline where it was starts no timer
// (workflow.AwaitWithTimeout starts one each time and, in this SDK, never
// cancels the last). A timer for an instant that moved is cancelled.
func (r *run) awaitWake(ctx workflow.Context, wake time.Time, changed func() bool) (bool, error) {
	if r.leanAt < leanV2 {
		return workflow.AwaitWithTimeout(ctx, wake.Sub(workflow.Now(ctx)), changed)
	}
	if r.wakeTimer != nil && !r.wakeAt.Equal(wake) {
		r.cancelWake()
		r.wakeTimer = nil
	}
	if r.wakeTimer == nil {
		tctx, cancel := workflow.WithCancel(ctx)
		r.wakeTimer, r.wakeAt, r.cancelWake = workflow.NewTimer(tctx, wake.Sub(workflow.Now(ctx))), wake, cancel
	}
	timer := r.wakeTimer
	if err := workflow.Await(ctx, func() bool { return timer.IsReady() || changed() }); err != nil {
		return false, err
	}
	if !timer.IsReady() {
		return true, nil
	}
	r.wakeTimer = nil
	if err := timer.Get(ctx, nil); err != nil {
		return false, err // cancelled with the run
	}
	return false, nil
}

// fireDue acts on what the clock brought: the deadline ends the run;
// escalations widen who may approve and tell the fallback owners; reminders
// go to whoever is still pending.
func (r *run) fireDue(ctx workflow.Context) {
	now := workflow.Now(ctx)
	due := r.state.DueAt(now)
	if due.Expired {
		if err := r.state.TimeOut(now); err == nil {
			r.publish(ctx)
		}
		return
	}
	if len(due.Escalate) > 0 {
		who := r.state.Escalate(due.Escalate, now)
		r.outbox = append(r.outbox, activities.Event{Kind: activities.EventEscalated, Reasons: due.Escalate, Recipients: who})
	}
	if len(due.Remind) > 0 {
		if who := r.state.Remind(due.Remind, now); len(who) > 0 {
			r.outbox = append(r.outbox, activities.Event{Kind: activities.EventReminder, Reasons: due.Remind, Recipients: who,
				Audit: r.auditEvent(ctx, approval.AuditReminded, due.Remind)})
		}
	}
	r.publish(ctx)
}

// cancelledInTemporal records a cancellation requested through Temporal
// itself (Web UI or CLI), so the run's result says what happened.
func (r *run) cancelledInTemporal(ctx workflow.Context) {
	r.state.CancelBySystem("the workflow was cancelled in Temporal", workflow.Now(ctx))
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	r.publish(dctx)
}

// apply runs exactly the approved plan, once: a started apply is never
// retried automatically, because running it twice is worse than failing.
func (r *run) apply(ctx workflow.Context) {
	if err := r.state.StartApply(workflow.Now(ctx)); err != nil {
		return
	}
	r.publish(ctx)
	r.sendAudit(ctx)
	res := r.runApply(ctx)
	if err := r.state.FinishApply(res, workflow.Now(ctx)); err != nil {
		workflow.GetLogger(ctx).Error("apply result not recorded", "error", err)
	}
	r.publish(ctx)
}

// runApply runs the apply activity once and says what it did.
func (r *run) runApply(ctx workflow.Context) approval.ApplyResult {

	timeout := r.in.ApplyTimeout
	if timeout <= 0 {
		timeout = DefaultApplyTimeout
	}
	if r.state.Mode != "" {
		timeout += activityMargin // the worker bounds the command itself
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		// A worker that dies mid-apply stops heartbeating; the run then
		// fails instead of waiting for the whole timeout.
		HeartbeatTimeout: time.Minute,
		RetryPolicy:      &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var a *activities.Activities
	var res approval.ApplyResult
	in := activities.ApplyInput{
		RunID:      r.state.ID,
		Workspace:  r.state.Workspace,
		PlanSHA256: r.state.Plan.SHA256,
	}
	if o := r.state.Origin; o != nil {
		in.PlanFileSHA256, in.Commit = o.PlanFileSHA256, o.Commit
	}
	if err := workflow.ExecuteActivity(actx, a.Apply, in).Get(ctx, &res); err != nil {
		res = applyFailure(err)
	}
	return res
}

// applyFailure says what an apply that returned no result means. Only an
// apply known not to have started (its workspace or plan could not be
// loaded, before it was claimed) failed; anything else, a worker that died,
// timed out or was cancelled mid-apply, or a second attempt refused by the
// first one's claim, may have changed the infrastructure: outcome unknown,
// for a human, never retried.
func applyFailure(err error) approval.ApplyResult {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case activities.ErrWorkspaceUnknown, activities.ErrPlanUnavailable, activities.ErrClaimUnavailable:
			return approval.ApplyResult{Error: "apply did not start: " + appErr.Message()}
		case activities.ErrApplyOutcomeUnknown:
			return approval.ApplyResult{Executed: true, OutcomeUnknown: true, Error: appErr.Message()}
		}
	}
	return approval.ApplyResult{Executed: true, OutcomeUnknown: true,
		Error: "the apply did not report back (" + rootMessage(err) + "): it may have run, in part or in full; check the infrastructure"}
}

// historyFull reports whether this workflow run should hand over to a fresh
// one: Temporal suggests it, or the run has woken up often enough that its
// history approaches the bound README states.
func (r *run) historyFull(ctx workflow.Context) bool {
	if r.legacy {
		return false
	}
	limit := r.in.MaxWakeups
	if limit <= 0 {
		limit = DefaultMaxWakeups
	}
	return workflow.GetInfo(ctx).GetContinueAsNewSuggested() || r.wakeups >= limit
}

// readyToContinue lets Update handlers finish and notices land, then reports
// whether the run may continue as new now: still waiting, with nothing left
// to send.
func (r *run) readyToContinue(ctx workflow.Context) (bool, error) {
	if err := workflow.Await(ctx, r.drained(ctx)); err != nil {
		return false, err
	}
	quiet := r.state.Status.Waiting() || r.state.Status == approval.StatusQueued
	return quiet && len(r.outbox) == 0 && len(r.unannounced()) == 0, nil
}

func (r *run) drained(ctx workflow.Context) func() bool {
	return func() bool { return workflow.AllHandlersFinished(ctx) && r.delivering == 0 && r.externalQuiet() }
}

// continueAsNew hands the run to a fresh workflow run with the same workflow
// ID (the run id), carrying its whole state.
func (r *run) continueAsNew(ctx workflow.Context) error {
	in := *r.in
	in.Resume = &Resume{Run: r.state, Notices: r.notices}
	if r.audited {
		mark := r.auditMark
		in.Resume.Audit = &mark
	}
	//workflowcheck:ignore map order is random, but the keys are sorted below before they reach history
	for a := range r.announced {
		in.Resume.Announced = append(in.Resume.Announced, a)
	}
	slices.Sort(in.Resume.Announced)
	return workflow.NewContinueAsNewError(ctx, RunWorkflowName, in)
}

// unannounced lists the open reasons whose approvers have not been asked in
// this round.
func (r *run) unannounced() []string {
	round := len(r.state.Rounds)
	var out []string
	for _, id := range r.state.OpenReasons() {
		if !r.announced[fmt.Sprintf("%s@%d", id, round)] {
			out = append(out, id)
		}
	}
	return out
}

// sendNotices asks the approvers of newly opened reasons and sends what the
// handlers and the clock queued.
func (r *run) sendNotices(ctx workflow.Context) {
	if !r.audited && r.noticeMu != nil && len(r.state.Messages) > 0 && r.notifiedStatus != "" && r.state.Status != r.notifiedStatus {
		// A live view (the Slack message) shows the new status.
		r.outbox = append(r.outbox, activities.Event{Kind: activities.EventUpdated})
	}
	r.notifiedStatus = r.state.Status
	if ids := r.unannounced(); len(ids) > 0 {
		for _, id := range ids {
			r.announced[fmt.Sprintf("%s@%d", id, len(r.state.Rounds))] = true
		}
		e := activities.Event{Kind: activities.EventApprovalRequested, Reasons: ids, Recipients: r.state.PendingApprovers()}
		e.Audit = r.auditEvent(ctx, approval.AuditReasonOpened, ids)
		if r.state.Policy != nil {
			// Approvers see what the policies said with the request.
			e.Warnings = r.state.Policy.Warnings
		}
		r.outbox = append(r.outbox, e)
	}
	batch := r.outbox
	r.outbox = nil
	if r.audited {
		batch = foldRecords(batch)
	}
	for _, e := range batch {
		r.send(ctx, e)
	}
}

// send delivers one notice. Notification is best effort: delivery runs
// beside the run, a failing notifier never blocks or fails it, and what could
// not be delivered is recorded on the run. Lean runs queue it for their
// deliverer (lean.go).
func (r *run) send(ctx workflow.Context, e activities.Event) {
	if r.lean {
		r.delivering++
		r.changes++
		r.pending = append(r.pending, e)
		r.poke(ctx, r.deliverer)
		return
	}
	e = r.stamp(e)
	if r.legacy {
		r.notifyV0(ctx, e)
		return
	}
	r.delivering++
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer func() { r.delivering-- }()
		if r.noticeMu != nil {
			// One notice at a time, in order: the first posts the run's
			// Slack message and the next ones update it, so each must
			// see the messages the one before posted.
			if err := r.noticeMu.Lock(ctx); err != nil {
				return
			}
			defer r.noticeMu.Unlock()
			e.Messages = slices.Clone(r.state.Messages)
		}
		r.notify(ctx, e)
	})
}

// stamp numbers the notice and its audit entries and says which run, in
// which state, it is about.
func (r *run) stamp(e activities.Event) activities.Event {
	r.notices++
	e.ID = fmt.Sprintf("%s/%d", r.state.ID, r.notices)
	e.RunID, e.Workspace, e.Status = r.state.ID, r.state.Workspace, r.state.Status
	e.RequestedBy, e.Deadline = r.state.RequestedBy.ID, r.state.Deadline
	for k := range e.Audit {
		e.Audit[k].ID, e.Audit[k].WorkflowVersion = auditID(r.state.ID, r.notices, k), r.version()
	}
	return e
}

// notify runs the Notify activity for a stamped notice and records on the
// run what it posted and what failed.
func (r *run) notify(ctx workflow.Context, e activities.Event) {
	var a *activities.Activities
	r.notifyWith(ctx, e, a.Notify, e)
}

// notifyWith runs a notice's activity (Notify, or NotifyFrom after a local
// first attempt) with arg, retrying for up to ten minutes, and records what
// it did.
func (r *run) notifyWith(ctx workflow.Context, e activities.Event, activity, arg any) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout:    30 * time.Second,
		ScheduleToCloseTimeout: 10 * time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute, MaximumAttempts: 8},
	})
	var res activities.NotifyResult
	if err := workflow.ExecuteActivity(actx, activity, arg).Get(ctx, &res); err != nil {
		workflow.GetLogger(ctx).Warn("notice not delivered", "event", e.ID, "kind", e.Kind, "error", err)
		r.notDelivered(ctx, e, res, rootMessage(err))
		return
	}
	r.delivered(ctx, e, res)
}

// delivered keeps what a notice posted and what failed for good while it
// went out.
func (r *run) delivered(ctx workflow.Context, e activities.Event, res activities.NotifyResult) {
	r.state.AddMessages(res.Posted)
	for _, f := range res.Failures {
		r.state.AddNotifyFailure(approval.NotifyFailure{EventID: e.ID, Kind: string(e.Kind), Error: f, At: workflow.Now(ctx)})
	}
}

// notDelivered records a notice that did not go out.
func (r *run) notDelivered(ctx workflow.Context, e activities.Event, res activities.NotifyResult, why string) {
	r.state.AddMessages(res.Posted)
	r.state.AddNotifyFailure(approval.NotifyFailure{EventID: e.ID, Kind: string(e.Kind), Error: why, At: workflow.Now(ctx)})
}

// rootMessage is the activity's own words rather than the wrapping the SDK
// adds: an application error's message, or the innermost error's.
func rootMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}
