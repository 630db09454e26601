package activities

import "github.com/gatehouse-dev/gatehouse/approval"

// PlanInput asks a worker to plan a terraform workspace for a run: check
// out (or use) its working directory, run init, plan -out and show -json,
// and evaluate the workspace's rules and steps on the result.
type PlanInput struct {
	RunID     string `json:"run_id"`
	Workspace string `json:"workspace"`
	// Ref is the git ref to check out; "" for the workspace's own.
	Ref string `json:"ref,omitempty"`
	// Commit, when set, checks out exactly this commit: a re-plan before
	// apply plans the code that was approved.
	Commit string `json:"commit,omitempty"`
	// RequestedBy is who the run is for: the rules leave them out of the
	// approvers they list.
	RequestedBy approval.Identity `json:"requested_by"`
	// Round numbers the plan within the run (1 for the first, more for
	// re-plans), so each plan's log and checkout are its own.
	Round int `json:"round"`
}

// The results a plan can have.
const (
	PlanPlanned   = "planned"
	PlanNoChanges = "no_changes"
	PlanFailed    = "failed"
)

// PlanOutcome is what planning found. Only summaries and hashes: the plan
// JSON and the binary plan are in the content-addressed store.
type PlanOutcome struct {
	// Result is PlanPlanned, PlanNoChanges or PlanFailed.
	Result string `json:"result"`
	// Plan is the JSON plan's summary (its SHA-256 is that of the stored
	// `show -json` output).
	Plan approval.PlanSummary `json:"plan"`
	// Reasons are the workspace's rules and steps evaluated on the whole
	// plan; policies come after, as for a submitted plan.
	Reasons []approval.Reason `json:"reasons,omitempty"`
	// Origin has the ref, commit, binary plan hash, binary version and
	// the stored plan log.
	Origin approval.Origin `json:"origin"`
	// Error says why the plan failed, ending with the tail of its output
	// (secrets redacted).
	Error string `json:"error,omitempty"`
}
