package approval

import "time"

// Conditions say when a rule applies. Every condition that is set must hold;
// "or" is expressed with several rules. A rule with no conditions always
// applies.
type Conditions struct {
	AddsGT      *int   `json:"adds_gt,omitempty"`
	ChangesGT   *int   `json:"changes_gt,omitempty"`
	DestroysGT  *int   `json:"destroys_gt,omitempty"`
	Environment string `json:"environment,omitempty"`
}

// Matches reports whether a plan for a workspace in environment env meets
// every condition.
func (c Conditions) Matches(p PlanSummary, env string) bool {
	if c.AddsGT != nil && p.Adds <= *c.AddsGT {
		return false
	}
	if c.ChangesGT != nil && p.Changes <= *c.ChangesGT {
		return false
	}
	if c.DestroysGT != nil && p.Destroys <= *c.DestroysGT {
		return false
	}
	if c.Environment != "" && c.Environment != env {
		return false
	}
	return true
}

// Stage is the lifecycle point at which a reason is asked for. Only post_plan
// exists today; the field is carried so stages can be added without changing
// the shape of stored runs.
type Stage string

// The stages.
const (
	StagePostPlan Stage = "post_plan"
)

// ReasonKind says where an approval reason came from.
type ReasonKind string

// The reason kinds.
const (
	KindRule ReasonKind = "rule"
)

// Rule turns a matching plan into one approval reason.
type Rule struct {
	Name              string     `json:"name"`
	Stage             Stage      `json:"stage,omitempty"`
	When              Conditions `json:"when"`
	Approvers         Approvers  `json:"approvers"`
	MinApprovals      int        `json:"min_approvals"`
	AllowSelfApproval bool       `json:"allow_self_approval,omitempty"`
}

// Outcome is what a timed-out run records as its result.
type Outcome string

// The timeout outcomes. Either way the run never applies.
const (
	OutcomeReject Outcome = "reject"
	OutcomeCancel Outcome = "cancel"
)

// Valid reports whether o is a known outcome.
func (o Outcome) Valid() bool { return o == OutcomeReject || o == OutcomeCancel }

// DefaultTimeout is how long a run waits for approval when a workspace does
// not say.
const DefaultTimeout = 4 * time.Hour

// Workspace is the approval policy of one workspace: the snapshot a run is
// evaluated against.
type Workspace struct {
	Name        string        `json:"name"`
	Environment string        `json:"environment,omitempty"`
	Timeout     time.Duration `json:"timeout"`
	OnTimeout   Outcome       `json:"on_timeout"`
	Rules       []Rule        `json:"rules,omitempty"`
}

// Evaluate returns one open reason for every rule of ws the plan matches, in
// rule order. directory lists the users who could be eligible, so each reason
// can say whom it waits for; the requester is left out of that list unless the
// rule allows self-approval.
func Evaluate(ws Workspace, plan PlanSummary, requester Identity, directory []Identity) []Reason {
	reasons := []Reason{}
	for _, rule := range ws.Rules {
		if !rule.When.Matches(plan, ws.Environment) {
			continue
		}
		var eligible []UserID
		for _, id := range rule.Approvers.Expand(directory) {
			if id == requester.ID && !rule.AllowSelfApproval {
				continue
			}
			eligible = append(eligible, id)
		}
		stage := rule.Stage
		if stage == "" {
			stage = StagePostPlan
		}
		reasons = append(reasons, Reason{
			ID:                string(KindRule) + ":" + rule.Name,
			Name:              rule.Name,
			Kind:              KindRule,
			Stage:             stage,
			State:             ReasonOpen,
			Approvers:         rule.Approvers,
			Eligible:          eligible,
			Required:          rule.MinApprovals,
			AllowSelfApproval: rule.AllowSelfApproval,
			Approvals:         []Approval{},
		})
	}
	return reasons
}
