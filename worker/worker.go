// Package worker registers Gatehouse's workflow and activities on a Temporal
// worker.
package worker

import (
	"runtime/debug"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"golang.org/x/mod/module"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// DefaultTaskQueue is the task queue Gatehouse's workers poll and its runs
// are started on.
const DefaultTaskQueue = "gatehouse"

// New returns a worker on taskQueue with the run workflow and acts
// registered. The caller starts and stops it. Unless opts name a build, the
// worker names its tasks with this binary's BuildID.
func New(c client.Client, taskQueue string, runner workflows.Runner, acts *activities.Activities, opts sdkworker.Options) sdkworker.Worker {
	if opts.BuildID == "" {
		info, _ := debug.ReadBuildInfo()
		// The SDK has deprecated BuildID for deployment versions, but a
		// deployment version also opts the worker into Worker Deployments
		// on the server; BuildID only names the code in history.
		opts.BuildID = BuildID(info) //nolint:staticcheck // see above
	}
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

// BuildID names a binary's code to Temporal, which stamps it on every
// workflow and activity task a worker starts or completes (and keys
// auto-reset points by it): a release's version ("v0.5.0"), else the commit
// it was built from, 12 hex digits with "-dirty" for local changes. An
// operator reading a history in the Web UI sees which Gatehouse took each
// task; the SDK's default, a checksum of the executable, says nothing to a
// reader and takes 32 characters in each of those events (about 13 in a
// two-approval run). Empty when info names neither, as for `go run` and
// test binaries (Go stamps the commit only in `go build` and `go install`):
// the SDK then uses its checksum.
func BuildID(info *debug.BuildInfo) string {
	if info == nil {
		return ""
	}
	var revision string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	v := info.Main.Version
	if module.IsPseudoVersion(v) {
		// A commit without a tag, built from a checkout (Go derives the
		// version from it) or installed by commit: the commit says it.
		if rev, err := module.PseudoVersionRev(v); err == nil && revision == "" {
			revision = rev
		}
		v = ""
	}
	if v != "" && v != "(devel)" {
		return v
	}
	if revision == "" {
		return ""
	}
	revision = revision[:min(12, len(revision))]
	if dirty {
		revision += "-dirty"
	}
	return revision
}
