// Package activities holds the run workflow's side effects: running the
// approved plan's apply command, evaluating policies and notifying people.
// Activities are methods on one struct that carries their dependencies,
// registered once per worker.
package activities

import (
	"net/http"
	"time"

	"go.temporal.io/sdk/client"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/metrics"
	"github.com/gatehouse-dev/gatehouse/plan"
)

// Activities carries what the activities need. The worker's own config decides
// which command applies a workspace: commands never travel through workflow
// input, so whoever can start a workflow cannot choose what runs.
type Activities struct {
	Config   *config.Config
	Plans    *plan.Store
	Notifier Notifier
	// Audit keeps the audit trail; nil keeps none.
	Audit AuditSink
	// Metrics counts applies, notifier failures and approval wait time;
	// nil counts nothing.
	Metrics *metrics.Metrics
	Logger  *zap.Logger
	// HTTP is the client for webhooks; a default with a timeout when nil.
	HTTP *http.Client
	// Executor applies approved plans of workspaces with an apply command;
	// CommandExecutor when nil. Terraform workspaces are applied by a
	// TerraformExecutor on Work.
	Executor Executor
	// Work is the root of what terraform workspaces need on disk: per-run
	// checkouts and plan files, a private HOME, the plugin cache and the
	// CLI config Gatehouse writes (<data-dir>/work).
	Work string
	// Claims records, outside workflow history, which attempt applies a
	// run's plan; Apply refuses to run without it.
	Claims *ClaimStore

	// Locks holds each workspace's apply lock; Temporal tells it whether a
	// lock's holder is still running (nil: a held lock is never taken
	// over).
	Locks    *LockStore
	Temporal client.Client
	// Namespace is the Temporal namespace runs live in, for links into the
	// Temporal Web UI ("default" when "").
	Namespace string
	// Runs reads a run's current state for the messages that show it;
	// queries the run's workflow through Temporal when nil.
	Runs RunReader
	// EmailFallbackAfter is how long a failing Slack post is retried
	// before the notice falls back to email (DefaultEmailFallbackAfter
	// when zero).
	EmailFallbackAfter time.Duration

	// policies caches prepared policy queries per config version.
	policies policyCache
}
