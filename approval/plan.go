package approval

// PlanSummary is what a run knows of its plan. It carries counts, addresses and
// types but never attribute values, so secrets in a plan never reach workflow
// history. The SHA-256 is of the exact bytes submitted: the apply step uses it
// to run exactly the plan that was approved.
type PlanSummary struct {
	SHA256    string     `json:"sha256"`
	Adds      int        `json:"adds"`
	Changes   int        `json:"changes"`
	Destroys  int        `json:"destroys"`
	Replaces  int        `json:"replaces"`
	Resources []Resource `json:"resources"`
}

// PlanCounts is a plan's hash and counts without its resource list: what a
// round records of its plan, so rounds do not repeat the list in workflow
// state (the run carries it for the current plan).
type PlanCounts struct {
	SHA256   string `json:"sha256"`
	Adds     int    `json:"adds"`
	Changes  int    `json:"changes"`
	Destroys int    `json:"destroys"`
	Replaces int    `json:"replaces"`
}

// Counts returns the plan's hash and counts.
func (p PlanSummary) Counts() PlanCounts {
	return PlanCounts{SHA256: p.SHA256, Adds: p.Adds, Changes: p.Changes, Destroys: p.Destroys, Replaces: p.Replaces}
}

// Resource is one resource the plan touches with a non-trivial action.
type Resource struct {
	Address  string   `json:"address"`
	Type     string   `json:"type"`
	Provider string   `json:"provider,omitempty"`
	Actions  []Action `json:"actions"`
}

// Action is what a plan does to a resource, as Gatehouse names it.
type Action string

// The actions. Replace is reported on its own, not as a create plus delete.
const (
	ActionCreate  Action = "create"
	ActionUpdate  Action = "update"
	ActionDelete  Action = "delete"
	ActionReplace Action = "replace"
)

// Summarize counts the resources' actions the way Terraform prints its plan
// line: a replace is both an add and a destroy, and is counted as a replace
// too.
func Summarize(sha256 string, resources []Resource) PlanSummary {
	s := PlanSummary{SHA256: sha256, Resources: resources}
	if s.Resources == nil {
		s.Resources = []Resource{}
	}
	for _, r := range resources {
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
			}
		}
	}
	return s
}
