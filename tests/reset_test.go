package tests

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// TestResetAfterApplyDoesNotApplyAgain resets an applied run in Temporal to
// its first workflow task, as an operator could from the Web UI or CLI: the
// reset run schedules the apply again, finds the first attempt's claim,
// runs nothing, and ends outcome_unknown naming that attempt. Before the
// claims, a reset applied the plan a second time.
func TestResetAfterApplyDoesNotApplyAgain(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("staging-app", "t-alice", "add-only.json") // no rule: applies at once
	s.waitFor(run, approval.StatusApplied)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var resetTo int64
	it := s.client.GetWorkflowHistory(ctx, run.ID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() && resetTo == 0 {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			resetTo = ev.GetEventId()
		}
	}
	resp, err := s.client.ResetWorkflowExecution(ctx, &workflowservice.ResetWorkflowExecutionRequest{
		Namespace:                 s.temporal.GetDefaultNamespace(),
		WorkflowExecution:         &commonpb.WorkflowExecution{WorkflowId: run.ID},
		Reason:                    "operator reset",
		WorkflowTaskFinishEventId: resetTo,
		RequestId:                 uuid.NewString(),
	})
	if err != nil {
		t.Fatalf("reset: %v", err)
	}
	var final approval.Run
	if err := s.client.GetWorkflow(ctx, run.ID, resp.GetRunId()).Get(ctx, &final); err != nil {
		t.Fatalf("reset run: %v", err)
	}
	if final.Status != approval.StatusOutcomeUnknown || final.Apply == nil || !strings.Contains(final.Apply.Error, "attempt") {
		t.Errorf("reset run: %s, apply %+v; want outcome_unknown naming the first attempt", final.Status, final.Apply)
	}
	if lines := s.applied(); len(lines) != 1 {
		t.Errorf("apply ran %d times; want once, before the reset", len(lines))
	}
	if got := s.get(run); got.Status != approval.StatusOutcomeUnknown {
		t.Errorf("the API shows %s; want outcome_unknown", got.Status)
	}
}
