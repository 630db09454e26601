package tests

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/worker"
)

// TestWorkspaceTaskQueue runs a workspace with a task queue of its own on a
// worker that polls only that queue, beside a worker that polls only the
// default one: each run's workflow and activity tasks go to its
// workspace's queue, so a workspace's plans and applies run only where its
// credentials are.
func TestWorkspaceTaskQueue(t *testing.T) {
	const isolated = "gatehouse-isolated"
	cfg := exampleConfig(t)
	withQueue := strings.Replace(cfg, "  - name: staging-app\n", "  - name: staging-app\n    task_queue: "+isolated+"\n", 1)
	if withQueue == cfg {
		t.Fatal("test config has no staging-app workspace to give a queue")
	}
	dir, cfgPath, applyLog := writeConfig(t, withQueue)
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	opts := clusterOptions(t, ts, dir, cfgPath)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	general, dedicated := opts, opts
	general.Queues = []string{worker.DefaultTaskQueue}
	dedicated.Queues = []string{isolated}
	runInProcess(t, app.RunWorker, general)
	runInProcess(t, app.RunWorker, dedicated)
	runInProcess(t, app.RunGateway, opts)
	s := &stack{t: t, url: "http://" + opts.HTTPAddr, applyLog: applyLog}
	waitReady(t, s.url)

	own := s.createRun("staging-app", "t-alice", "prod-network.json")
	s.waitFor(own, approval.StatusApplied)
	shared := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(shared, "approve", "t-bob", nil, http.StatusOK)
	s.decide(shared, "approve", "t-carol", nil, http.StatusOK)
	s.waitFor(shared, approval.StatusApplied)

	c, err := client.DialContext(ctx, client.Options{HostPort: opts.TemporalAddr, Namespace: opts.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for run, want := range map[string]string{own.ID: isolated, shared.ID: worker.DefaultTaskQueue} {
		queues := taskQueuesOf(ctx, t, c, run)
		if len(queues) == 0 {
			t.Fatalf("run %s: no task queue in its history", run)
		}
		for _, q := range queues {
			if q != want {
				t.Errorf("run %s: a task went to queue %q; want only %q (its history's queues: %v)", run, q, want, queues)
				break
			}
		}
	}
}

// taskQueuesOf lists the task queues a run's history sent work to: its
// start, each workflow task and each activity.
func taskQueuesOf(ctx context.Context, t *testing.T, c client.Client, id string) []string {
	t.Helper()
	var out []string
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatalf("history of %s: %v", id, err)
		}
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			out = append(out, e.GetWorkflowExecutionStartedEventAttributes().GetTaskQueue().GetName())
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			out = append(out, e.GetActivityTaskScheduledEventAttributes().GetTaskQueue().GetName())
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
			// Sticky queues are the worker's own; the normal name is
			// what was asked for.
			if q := e.GetWorkflowTaskScheduledEventAttributes().GetTaskQueue(); q.GetKind() != enumspb.TASK_QUEUE_KIND_STICKY {
				out = append(out, q.GetName())
			}
		}
	}
	return out
}
