package approval

import "slices"

// PlanSummary is what a run knows of its plan: its hash and counts. The
// resource list (addresses, types, actions and the digests of their values)
// stays in the content-addressed plan store, never in workflow state, so a
// plan of fifty thousand resources costs a run no more history than one of
// five. The SHA-256 is of the exact bytes submitted: the apply step uses it to
// run exactly the plan that was approved.
type PlanSummary struct {
	SHA256   string `json:"sha256"`
	Adds     int    `json:"adds"`
	Changes  int    `json:"changes"`
	Destroys int    `json:"destroys"`
	Replaces int    `json:"replaces"`
	Forgets  int    `json:"forgets,omitempty"`
	Imports  int    `json:"imports,omitempty"`
	Moves    int    `json:"moves,omitempty"`
	// Invocations counts the plan's action_invocations (Terraform actions).
	Invocations int `json:"invocations,omitempty"`
	// ResourceCount is the number of changes counted above.
	ResourceCount int `json:"resource_count"`
	// ChangesDigest fingerprints every change with its digest: a revised
	// plan with the same ChangesDigest changes nothing a reason that looks
	// at the whole plan (a step, a policy's requirement) covered.
	ChangesDigest string `json:"changes_digest,omitempty"`
}

// PlanCounts is what a round records of its plan. It is the summary itself
// now that the summary carries no resource list; the name stays for the
// rounds' JSON.
type PlanCounts = PlanSummary

// Counts returns the plan's hash and counts.
func (p PlanSummary) Counts() PlanCounts { return p }

// Plan is a parsed plan: its summary and every resource change it makes.
// Rules are evaluated on it where the plan store is at hand (the gateway and
// the worker's activities); the workflow sees only the summary and what the
// evaluation concluded.
type Plan struct {
	PlanSummary
	ResourceChanges []Resource `json:"resource_changes"`
}

// Resource is one change the plan makes, to a resource or as an action
// invocation.
type Resource struct {
	Address string `json:"address"`
	// PreviousAddress is where a moved resource was.
	PreviousAddress string `json:"previous_address,omitempty"`
	Type            string `json:"type"`
	Provider        string `json:"provider,omitempty"`
	// Actions are what the plan does to it, as Gatehouse names them: a
	// replace is one action; a create that also forgets the old object is
	// create and forget; an import or move comes with whatever else the
	// change does.
	Actions []Action `json:"actions"`
	// Digest is the hex SHA-256 of the change's actions and of its before
	// and after values, sensitive ones included. The values themselves are
	// never kept: the digest lets a revised plan keep an approval only when
	// every change it covered is identical, down to an IAM policy's text.
	Digest string `json:"digest,omitempty"`
}

// Action is what a plan does to a resource, as Gatehouse names them.
type Action string

// The actions. Replace is reported on its own, not as a create plus delete.
const (
	ActionCreate  Action = "create"
	ActionUpdate  Action = "update"
	ActionDelete  Action = "delete"
	ActionReplace Action = "replace"
	// ActionForget removes an object from state without destroying it
	// (Terraform 1.7+ removed blocks, OpenTofu's forget).
	ActionForget Action = "forget"
	// ActionImport brings an existing object under management.
	ActionImport Action = "import"
	// ActionMove gives a resource a new address (moved blocks).
	ActionMove Action = "move"
	// ActionInvoke is an action invocation (Terraform 1.14 actions).
	ActionInvoke Action = "invoke"
)

// Actions lists every action a rule can select, in documentation order.
var Actions = []Action{ActionCreate, ActionUpdate, ActionDelete, ActionReplace, ActionForget, ActionImport, ActionMove, ActionInvoke}

// Valid reports whether a is an action Gatehouse knows.
func (a Action) Valid() bool { return slices.Contains(Actions, a) }

// Summarize counts the changes' actions the way Terraform prints its plan
// line: a replace is both an add and a destroy, and is counted as a replace
// too. Forgets, imports, moves and invocations are counted on their own.
func Summarize(sha256 string, changes []Resource) Plan {
	p := Plan{PlanSummary: PlanSummary{SHA256: sha256, ResourceCount: len(changes)}, ResourceChanges: changes}
	if p.ResourceChanges == nil {
		p.ResourceChanges = []Resource{}
	}
	s := &p.PlanSummary
	for _, r := range changes {
		for _, a := range r.Actions {
			switch a {
			case ActionCreate:
				s.Adds++
			case ActionUpdate:
				s.Changes++
			case ActionDelete:
				s.Destroys++
			case ActionReplace:
				s.Replaces++
				s.Adds++
				s.Destroys++
			case ActionForget:
				s.Forgets++
			case ActionImport:
				s.Imports++
			case ActionMove:
				s.Moves++
			case ActionInvoke:
				s.Invocations++
			}
		}
	}
	s.ChangesDigest = fingerprint(Conditions{}.inputs(Facts{Plan: p}))
	return p
}
