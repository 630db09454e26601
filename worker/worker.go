// Package worker registers Gatehouse's workflow and activities on a Temporal
// worker.
package worker

import (
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// DefaultTaskQueue is the task queue Gatehouse's workers poll and its runs
// are started on.
const DefaultTaskQueue = "gatehouse"

// New returns a worker on taskQueue with the run workflow and acts
// registered. The caller starts and stops it.
func New(c client.Client, taskQueue string, runner workflows.Runner, acts *activities.Activities, opts sdkworker.Options) sdkworker.Worker {
	w := sdkworker.New(c, taskQueue, opts)
	Register(w, runner, acts)
	return w
}

// Register adds the run workflow and the activities to any registry: a real
// worker or the SDK's test environment.
func Register(r sdkworker.Registry, runner workflows.Runner, acts *activities.Activities) {
	r.RegisterWorkflowWithOptions(runner.Run, workflow.RegisterOptions{Name: workflows.RunWorkflowName})
	r.RegisterActivity(acts)
}
