package approval

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// CostSummary is what a run knows of an Infracost estimate: monthly totals
// before and after the change, in one currency.
type CostSummary struct {
	SHA256           string  `json:"sha256"`
	Currency         string  `json:"currency"`
	MonthlyCost      float64 `json:"monthly_cost"`
	PastMonthlyCost  float64 `json:"past_monthly_cost"`
	MonthlyCostDelta float64 `json:"monthly_cost_delta"`
	// Failed means the document is no estimate: Infracost marked a project
	// errored (metadata.errors with isError), some projects failed (a
	// partial estimate is not a number either), or its totals are missing
	// or null. The figures above are then zero and meaningless; cost
	// conditions treat the run as having no estimate (fail closed).
	Failed bool `json:"failed,omitempty"`
	// Problems says why the estimate failed, in Infracost's words (a few,
	// each shortened).
	Problems []string `json:"problems,omitempty"`
}

// Usable reports whether c is an estimate cost conditions can compare: one
// was submitted and Infracost did not mark it failed.
func (c *CostSummary) Usable() bool { return c != nil && !c.Failed }

// Facts are what rule conditions are evaluated on: the plan, its cost
// estimate (nil when none was submitted) and the workspace's environment and
// tags.
type Facts struct {
	Plan        Plan
	Cost        *CostSummary
	Environment string
	Tags        []string
}

// Conditions say when a rule applies. Every condition that is set must hold;
// "or" is expressed with several rules. A rule with no conditions always
// applies.
type Conditions struct {
	AddsGT     *int `json:"adds_gt,omitempty"`
	ChangesGT  *int `json:"changes_gt,omitempty"`
	DestroysGT *int `json:"destroys_gt,omitempty"`
	ReplacesGT *int `json:"replaces_gt,omitempty"`
	// ResourcesGT counts the resources the plan changes.
	ResourcesGT *int `json:"resources_gt,omitempty"`
	// Actions holds when any resource's action is one of these.
	Actions []Action `json:"actions,omitempty"`
	// ResourceTypes and Providers hold when any changed resource's type
	// (provider) matches one of the globs, e.g. aws_iam_* or
	// registry.terraform.io/hashicorp/aws. '*' matches any run of
	// characters, '?' one.
	ResourceTypes []string `json:"resource_types,omitempty"`
	Providers     []string `json:"providers,omitempty"`
	Environment   string   `json:"environment,omitempty"`
	// Tags holds when the workspace has any of these tags.
	Tags []string `json:"tags,omitempty"`
	// Cost conditions compare the submitted Infracost estimate. With no
	// estimate they hold anyway (fail closed) and the reason says why.
	MonthlyCostDeltaGT *float64 `json:"monthly_cost_delta_gt,omitempty"`
	MonthlyCostGT      *float64 `json:"monthly_cost_gt,omitempty"`
}

// needsCost reports whether any condition reads the cost estimate.
func (c Conditions) needsCost() bool { return c.MonthlyCostDeltaGT != nil || c.MonthlyCostGT != nil }

// Match reports whether the facts meet every condition. note explains a match
// that holds only because a fact was missing.
func (c Conditions) Match(f Facts) (ok bool, note string) {
	p := f.Plan
	for _, gt := range []struct {
		limit *int
		value int
	}{{c.AddsGT, p.Adds}, {c.ChangesGT, p.Changes}, {c.DestroysGT, p.Destroys}, {c.ReplacesGT, p.Replaces}, {c.ResourcesGT, len(p.ResourceChanges)}} {
		if gt.limit != nil && gt.value <= *gt.limit {
			return false, ""
		}
	}
	if c.Environment != "" && c.Environment != f.Environment {
		return false, ""
	}
	if len(c.Tags) > 0 && !slices.ContainsFunc(c.Tags, func(t string) bool { return slices.Contains(f.Tags, t) }) {
		return false, ""
	}
	if c.selectsResources() && len(c.selected(p)) == 0 {
		return false, ""
	}
	if c.needsCost() {
		switch {
		case f.Cost == nil:
			return true, "no cost estimate was submitted with the plan: the cost condition is treated as met (fail closed)"
		case f.Cost.Failed:
			return true, "the cost estimate failed (" + strings.Join(f.Cost.Problems, "; ") + "): the cost condition is treated as met (fail closed)"
		}
		if c.MonthlyCostDeltaGT != nil && f.Cost.MonthlyCostDelta <= *c.MonthlyCostDeltaGT {
			return false, ""
		}
		if c.MonthlyCostGT != nil && f.Cost.MonthlyCost <= *c.MonthlyCostGT {
			return false, ""
		}
	}
	return true, ""
}

// selectsResources reports whether the conditions pick out particular
// resources (by action, type or provider).
func (c Conditions) selectsResources() bool {
	return len(c.Actions) > 0 || len(c.ResourceTypes) > 0 || len(c.Providers) > 0
}

// selected lists the resources the action, type and provider conditions
// pick out (all of those set must hold for a resource).
func (c Conditions) selected(p Plan) []Resource {
	// Globs are compiled once per evaluation, not once per resource: plans
	// of hundreds of resources are common and this runs in a workflow task.
	types, providers := compileGlobs(c.ResourceTypes), compileGlobs(c.Providers)
	var out []Resource
	for _, r := range p.ResourceChanges {
		if len(c.Actions) > 0 && !slices.ContainsFunc(r.Actions, func(a Action) bool { return slices.Contains(c.Actions, a) }) {
			continue
		}
		if len(types) > 0 && !matchAny(types, r.Type) {
			continue
		}
		if len(providers) > 0 && !matchAny(providers, r.Provider) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// inputs returns the facts the conditions look at, as sorted lines: the
// resource changes they select or count (a destroy rule looks at deletes and
// replaces, an adds rule at creates and replaces, a changes rule at updates,
// a type or provider rule at its resources; a rule with no condition on the
// plan at every change), and the cost figures it compares. When a revised
// plan leaves a reason's inputs as they were, the approvals on it stand.
func (c Conditions) inputs(f Facts) []string {
	resources := f.Plan.ResourceChanges
	if c.selectsResources() {
		resources = c.selected(f.Plan)
	}
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
	if c.ReplacesGT != nil {
		want = append(want, ActionReplace)
	}
	if c.ResourcesGT != nil {
		want = nil // every change counts
	}
	var out []string
	for _, r := range resources {
		for _, a := range r.Actions {
			if want == nil || slices.Contains(want, a) {
				// The digest covers the change's values: the same address
				// and action with another IAM policy is another input.
				out = append(out, string(a)+" "+r.Address+" "+r.Digest)
			}
		}
	}
	if c.needsCost() {
		switch {
		case f.Cost == nil:
			out = append(out, "cost: none")
		case f.Cost.Failed:
			out = append(out, "cost: failed")
		default:
			out = append(out, fmt.Sprintf("cost: %s %.2f %.2f", f.Cost.Currency, f.Cost.MonthlyCost, f.Cost.MonthlyCostDelta))
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// compileGlobs turns globs into matchers: '*' matches any run of characters
// (slashes included) and '?' one character.
func compileGlobs(globs []string) []*regexp.Regexp {
	var out []*regexp.Regexp
	for _, g := range globs {
		out = append(out, globRegexp(g))
	}
	return out
}

func matchAny(res []*regexp.Regexp, s string) bool {
	return slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(s) })
}

func globRegexp(glob string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range glob {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}
