package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sort"
	"time"
)

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

// inputs returns the resource changes the conditions look at, as sorted
// "action address" lines: a destroy rule looks at deletes and replaces, an
// adds rule at creates and replaces, a changes rule at updates. A rule with
// no condition on the plan looks at every change. When a revised plan leaves
// a reason's inputs as they were, the approvals given on it still stand.
func (c Conditions) inputs(p PlanSummary) []string {
	var want []Action
	if c.AddsGT != nil {
		want = append(want, ActionCreate, ActionReplace)
	}
	if c.ChangesGT != nil {
		want = append(want, ActionUpdate)
	}
	if c.DestroysGT != nil {
		want = append(want, ActionDelete, ActionReplace)
	}
	var out []string
	for _, r := range p.Resources {
		for _, a := range r.Actions {
			if want == nil || slices.Contains(want, a) {
				out = append(out, string(a)+" "+r.Address)
			}
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// fingerprint condenses inputs into a short stable string.
func fingerprint(lines []string) string {
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// Stage is the lifecycle point at which a reason is asked for. Stages run in
// order: every reason of a stage must be approved before the next stage's
// reasons open. post_apply reasons are sign-offs: they open after the apply
// and do not block it.
type Stage string

// The stages, in lifecycle order. A run always starts from a submitted plan,
// so there is no pre_plan stage.
const (
	StagePostPlan  Stage = "post_plan"
	StagePreApply  Stage = "pre_apply"
	StagePostApply Stage = "post_apply"
)

// stageOrder lists the stages in the order they open.
var stageOrder = []Stage{StagePostPlan, StagePreApply, StagePostApply}

// Valid reports whether s is a known stage.
func (s Stage) Valid() bool { return slices.Contains(stageOrder, s) }

func (s Stage) rank() int { return slices.Index(stageOrder, s) }

// ReasonKind says where an approval reason came from.
type ReasonKind string

// The reason kinds, in the order they are listed within a stage.
const (
	KindPolicy ReasonKind = "policy"
	KindStep   ReasonKind = "step"
	KindRule   ReasonKind = "rule"
)

var kindOrder = []ReasonKind{KindPolicy, KindStep, KindRule}

func (k ReasonKind) rank() int { return slices.Index(kindOrder, k) }

// Rule turns a matching plan into one approval reason.
type Rule struct {
	Name              string     `json:"name"`
	Stage             Stage      `json:"stage,omitempty"`
	When              Conditions `json:"when"`
	Approvers         Approvers  `json:"approvers"`
	MinApprovals      int        `json:"min_approvals"`
	AllowSelfApproval bool       `json:"allow_self_approval,omitempty"`
	// Timing overrides the workspace's for this rule's reason.
	Timing
}

// Step is an approval a lifecycle stage always asks for, whatever the plan
// does: "every apply to production needs the on-call's go", or a security
// sign-off after apply.
type Step struct {
	Name              string    `json:"name"`
	Stage             Stage     `json:"stage"`
	Approvers         Approvers `json:"approvers"`
	MinApprovals      int       `json:"min_approvals"`
	AllowSelfApproval bool      `json:"allow_self_approval,omitempty"`
	// Timing overrides the workspace's for this step's reason.
	Timing
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

// DefaultTimeout is how long a reason waits for approval when neither its
// rule nor its workspace says.
const DefaultTimeout = 4 * time.Hour

// Workspace is the approval policy of one workspace: the snapshot a run is
// evaluated against.
type Workspace struct {
	Name        string  `json:"name"`
	Environment string  `json:"environment,omitempty"`
	OnTimeout   Outcome `json:"on_timeout"`
	AllowBypass bool    `json:"allow_bypass,omitempty"`
	Steps       []Step  `json:"steps,omitempty"`
	Rules       []Rule  `json:"rules,omitempty"`
	// Timing is the default of every reason of the workspace.
	Timing
}

// Evaluate returns the approval reasons a plan needs in a workspace: one per
// step and one per matching rule, ordered by stage, then policy, step, rule,
// then configuration order. All start waiting; the run opens them stage by
// stage. directory lists the users who could be eligible, so each reason can
// say whom it waits for; the requester is left out of that list unless the
// reason allows self-approval.
func Evaluate(ws Workspace, plan PlanSummary, requester Identity, directory []Identity) []Reason {
	reasons := []Reason{}
	add := func(kind ReasonKind, name string, stage Stage, approvers Approvers, min int, self bool, timing Timing, inputs []string) {
		if stage == "" {
			stage = StagePostPlan
		}
		if min < 1 {
			min = 1
		}
		var eligible []UserID
		for _, id := range approvers.Expand(directory) {
			if id == requester.ID && !self {
				continue
			}
			eligible = append(eligible, id)
		}
		reasons = append(reasons, Reason{
			ID: string(kind) + ":" + name, Name: name, Kind: kind, Stage: stage, State: ReasonWaiting,
			Approvers: approvers, Eligible: eligible, Required: min, AllowSelfApproval: self,
			Timing: timing.Over(ws.Timing).resolved(), Inputs: fingerprint(inputs), Approvals: []Approval{},
		})
	}
	everything := Conditions{}.inputs(plan)
	for _, s := range ws.Steps {
		add(KindStep, s.Name, s.Stage, s.Approvers, s.MinApprovals, s.AllowSelfApproval, s.Timing, everything)
	}
	for _, rule := range ws.Rules {
		if rule.When.Matches(plan, ws.Environment) {
			add(KindRule, rule.Name, rule.Stage, rule.Approvers, rule.MinApprovals, rule.AllowSelfApproval, rule.Timing, rule.When.inputs(plan))
		}
	}
	SortReasons(reasons)
	return reasons
}

// SortReasons orders reasons by stage, then kind (policy, step, rule), keeping
// the given order otherwise. Order is for display only: within a stage any
// order of approval works.
func SortReasons(reasons []Reason) {
	sort.SliceStable(reasons, func(i, j int) bool {
		a, b := reasons[i], reasons[j]
		if a.Stage != b.Stage {
			return a.Stage.rank() < b.Stage.rank()
		}
		return a.Kind.rank() < b.Kind.rank()
	})
}
