package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"google.golang.org/protobuf/proto"

	"github.com/stretchr/testify/mock"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/signing"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// testWorkflowID is the workflow ID every test run gets
// (env.SetStartWorkflowOptions), so the gateway's signatures can name it.
const testWorkflowID = "run-test"

// testKeys is the key the tests' gateway signs with and their worker
// verifies with.
var testKeys = mustKeys(strings.Repeat("k", 32))

// otherKeys is a key the worker does not know.
var otherKeys = mustKeys(strings.Repeat("o", 32))

func mustKeys(list string) *signing.Keys {
	k, err := signing.Parse(list)
	if err != nil {
		panic(err)
	}
	return k
}

// people are the users of the tests' worker config.
func people() []approval.Identity { return []approval.Identity{alice, bob, carol, victor, dave, erin} }

// verifyPeople checks an actor against people(), the tests' worker config,
// as config.Verify checks the users of a config without an oidc block.
func verifyPeople(id approval.Identity) error {
	for _, p := range people() {
		if p.ID != id.ID {
			continue
		}
		if !p.Same(id) {
			return fmt.Errorf("%s holds other groups or roles in this worker's configuration", id.ID)
		}
		return nil
	}
	return fmt.Errorf("%s is not a user of this worker's configuration", id.ID)
}

// testRunner is the run workflow as the tests' worker registers it.
func testRunner() workflows.Runner { return workflows.Runner{Keys: testKeys, Verify: verifyPeople} }

// signedInput is what the gateway starts a run with: the rules evaluated
// on the whole plan with the directory, the plan reduced to its summary,
// issued at issuedAt (the workflow's start time, within signing.MaxAge) and
// signed for workflowID.
func signedInput(t testing.TB, workflowID string, issuedAt time.Time, ws approval.Workspace, plan approval.Plan, cost *approval.CostSummary, requester approval.Identity, directory []approval.Identity) workflows.RunInput {
	t.Helper()
	in := workflows.RunInput{
		Workspace:   ws,
		RequestedBy: requester,
		Plan:        workflows.InputPlan{PlanSummary: plan.PlanSummary},
		Cost:        cost,
		Reasons:     approval.Evaluate(ws, plan, cost, requester, directory),
	}
	return signStart(t, workflowID, issuedAt, in)
}

// signStart (re)signs a run input, as the gateway does last.
func signStart(t testing.TB, workflowID string, issuedAt time.Time, in workflows.RunInput) workflows.RunInput {
	t.Helper()
	in.IssuedAt = issuedAt.UTC()
	payload, err := workflows.StartPayload(workflowID, in)
	if err != nil {
		t.Fatal(err)
	}
	in.Signature = testKeys.Sign(payload)
	return in
}

// draft is a run as a test describes it: what the gateway evaluates and
// signs (signedInput). The workflow sees neither the plan's resources nor
// the directory.
type draft struct {
	Workspace   approval.Workspace
	RequestedBy approval.Identity
	Message     string
	Plan        approval.Plan
	Cost        *approval.CostSummary
	Directory   []approval.Identity
	MaxWakeups  int
}

// input is the signed start of the draft's run.
func (d draft) input(t testing.TB, workflowID string, issuedAt time.Time) workflows.RunInput {
	t.Helper()
	in := signedInput(t, workflowID, issuedAt, d.Workspace, d.Plan, d.Cost, d.RequestedBy, d.Directory)
	in.Message, in.MaxWakeups = d.Message, d.MaxWakeups
	return signStart(t, workflowID, issuedAt, in)
}

// revise is a revise_plan argument for the draft's run: the workspace
// evaluated on the whole revised plan, as the gateway does.
func (d draft) revise(requester approval.Identity, plan approval.Plan) workflows.RevisePlanRequest {
	return workflows.RevisePlanRequest{
		Request: approval.Request{Actor: requester},
		Plan:    workflows.InputPlan{PlanSummary: plan.PlanSummary},
		Reasons: approval.Evaluate(d.Workspace, plan, nil, d.RequestedBy, d.Directory),
	}
}

// signDecision returns arg (an approval.Request or a
// workflows.RevisePlanRequest) as the gateway sends it: under Update ID id,
// issued at issuedAt, signed with keys for the Update name of run
// workflowID.
func signDecision(t testing.TB, keys *signing.Keys, workflowID, name, id string, issuedAt time.Time, arg any) any {
	t.Helper()
	fill := func(req *approval.Request) {
		req.ID, req.IssuedAt, req.Signature = id, issuedAt.UTC(), ""
	}
	switch a := arg.(type) {
	case approval.Request:
		fill(&a)
		arg = a
	case workflows.RevisePlanRequest:
		fill(&a.Request)
		arg = a
	default:
		t.Fatalf("sign %s: unexpected argument %T", name, arg)
	}
	payload, err := workflows.DecisionPayload(name, workflowID, id, arg)
	if err != nil {
		t.Fatal(err)
	}
	sig := keys.Sign(payload)
	switch a := arg.(type) {
	case approval.Request:
		a.Signature = sig
		return a
	case workflows.RevisePlanRequest:
		a.Request.Signature = sig
		return a
	}
	panic("unreachable")
}

// update sends a decision to the test run as the gateway does: signed for
// testWorkflowID and Update ID id, issued now (env.Now()).
func update(t testing.TB, env *testsuite.TestWorkflowEnvironment, name, id string, arg any, callbacks *testsuite.TestUpdateCallback) {
	t.Helper()
	env.UpdateWorkflow(name, id, callbacks, signDecision(t, testKeys, testWorkflowID, name, id, env.Now(), arg))
}

// setWorkflowID gives the environment's run the ID the tests sign for.
func setWorkflowID(env *testsuite.TestWorkflowEnvironment) {
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: testWorkflowID})
}

// maxResultBytes bounds what one Update answers: every byte of it is written
// to history.
const maxResultBytes = 200

// payloadSize is the size of v encoded as the workflow's payloads are.
func payloadSize(t testing.TB, v any) int {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return proto.Size(p)
}

// onNotify answers every way a run delivers a notice with deliver: the
// Notify activity, the local first attempt (NotifyLocally, which reports a
// failure in its answer) and the activity that takes over from it
// (NotifyFrom). Which of them a run uses depends on the task, so none is
// required.
func onNotify(env *testsuite.TestWorkflowEnvironment, acts *activities.Activities, deliver func(activities.Event) (activities.NotifyResult, error)) {
	env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, e activities.Event) (activities.NotifyResult, error) {
		return deliver(e)
	}).Maybe()
	env.OnActivity(acts.NotifyFrom, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.NotifyInput) (activities.NotifyResult, error) {
		return deliver(in.Event)
	}).Maybe()
	env.OnActivity(acts.NotifyLocally, mock.Anything, mock.Anything).Return(func(_ context.Context, n activities.LocalNotice) (activities.NotifyOutcome, error) {
		res, err := deliver(n.Event)
		if err == nil {
			return activities.NotifyOutcome{Result: res}, nil
		}
		// As NotifyLocally words it: an application error's own message.
		msg := err.Error()
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			msg = appErr.Message()
		}
		final := appErr != nil && appErr.NonRetryable()
		return activities.NotifyOutcome{Result: res, Unfinished: &activities.NotifyProgress{}, Error: msg, Final: final}, nil
	}).Maybe()
}

// notifyOK delivers every notice.
func notifyOK(activities.Event) (activities.NotifyResult, error) {
	return activities.NotifyResult{}, nil
}
