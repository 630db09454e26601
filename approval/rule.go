package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"sort"
	"time"
)

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

// Rank orders stages as they open: post_plan < pre_apply < post_apply;
// -1 for an unknown stage.
func (s Stage) Rank() int { return slices.Index(stageOrder, s) }

// ReasonKind says where an approval reason came from.
type ReasonKind string

// The reason kinds, in the order they are listed within a stage.
const (
	KindPolicy ReasonKind = "policy"
	KindStep   ReasonKind = "step"
	KindRule   ReasonKind = "rule"
)

var kindOrder = []ReasonKind{KindExternal, KindPolicy, KindStep, KindRule}

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
	Name        string   `json:"name"`
	Environment string   `json:"environment,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	// Policies names the Rego policies the workspace's runs are checked
	// against (evaluated by an activity; their requirements become policy
	// reasons).
	Policies    []string `json:"policies,omitempty"`
	OnTimeout   Outcome  `json:"on_timeout"`
	AllowBypass bool     `json:"allow_bypass,omitempty"`
	// Mode is what approval leads to (see Mode).
	Mode Mode `json:"mode,omitempty"`
	// Supersede makes a newer run of the workspace end the older runs
	// still waiting for approval (superseded).
	Supersede bool `json:"supersede,omitempty"`
	// ApprovalTTL voids approvals older than this when the apply would
	// start: they are asked for again. Zero: approvals do not expire.
	ApprovalTTL time.Duration `json:"approval_ttl,omitempty"`
	// Freeze lists the windows in which approved runs wait to apply.
	Freeze []FreezeWindow `json:"freeze,omitempty"`
	Steps  []Step         `json:"steps,omitempty"`
	Rules  []Rule         `json:"rules,omitempty"`
	// External hands the approval of every run to an external system
	// (nil: Gatehouse's own approvers decide).
	External *ExternalApproval `json:"external,omitempty"`
	// Timing is the default of every reason of the workspace.
	Timing
}

// Evaluate returns the approval reasons a plan (and its cost estimate, nil
// when none was submitted) needs in a workspace: one per step and one per
// matching rule, ordered by stage, then policy, step, rule, then
// configuration order. Policy reasons come later, from the policy activity
// (PolicyReasons). All start waiting; the run opens them stage by stage.
// directory lists the users who could be eligible, so each reason can say
// whom it waits for; the requester is left out of that list unless the
// reason allows self-approval.
func Evaluate(ws Workspace, plan Plan, cost *CostSummary, requester Identity, directory []Identity) []Reason {
	facts := Facts{Plan: plan, Cost: cost, Environment: ws.Environment, Tags: ws.Tags}
	everything := plan.ChangesDigest
	if everything == "" {
		everything = fingerprint(Conditions{}.inputs(Facts{Plan: plan}))
	}
	reasons := []Reason{}
	for _, s := range ws.Steps {
		reasons = append(reasons, newReason(ws, KindStep, s.Name, s.Stage, s.Approvers, s.MinApprovals, s.AllowSelfApproval, s.Timing, everything, requester, directory))
	}
	for _, rule := range ws.Rules {
		ok, note := rule.When.Match(facts)
		if !ok {
			continue
		}
		reason := newReason(ws, KindRule, rule.Name, rule.Stage, rule.Approvers, rule.MinApprovals, rule.AllowSelfApproval, rule.Timing, fingerprint(rule.When.inputs(facts)), requester, directory)
		reason.Note = note
		reasons = append(reasons, reason)
	}
	if ws.External != nil {
		// The external system approves the whole plan; the reason makes
		// sure a run is never approved because no rule matched.
		reasons = append(reasons, externalReason(ws, everything))
	}
	SortReasons(reasons)
	return reasons
}

// newReason builds a waiting reason with its eligible approvers expanded and
// its timing resolved against the workspace's.
func newReason(ws Workspace, kind ReasonKind, name string, stage Stage, approvers Approvers, min int, self bool, timing Timing, inputs string, requester Identity, directory []Identity) Reason {
	if stage == "" {
		stage = StagePostPlan
	}
	if min < 1 {
		min = 1
	}
	expand := func(a Approvers) []UserID {
		var out []UserID
		for _, id := range a.Expand(directory) {
			if id != requester.ID || self {
				out = append(out, id)
			}
		}
		return out
	}
	timing = timing.Over(ws.Timing).Resolved()
	return Reason{
		ID: string(kind) + ":" + name, Name: name, Kind: kind, Stage: stage, State: ReasonWaiting,
		Approvers: approvers, Eligible: expand(approvers), Required: min, AllowSelfApproval: self,
		Timing: timing, Inputs: inputs, Approvals: []Approval{},
		// Expanded now, where the directory is at hand: the workflow
		// that escalates later carries no copy of it.
		EscalationEligible: expand(timing.EscalateTo),
	}
}

// SortReasons orders reasons by stage, then kind (policy, step, rule), keeping
// the given order otherwise. Order is for display only: within a stage any
// order of approval works.
func SortReasons(reasons []Reason) {
	sort.SliceStable(reasons, func(i, j int) bool {
		a, b := reasons[i], reasons[j]
		if a.Stage != b.Stage {
			return a.Stage.Rank() < b.Stage.Rank()
		}
		return a.Kind.rank() < b.Kind.rank()
	})
}
