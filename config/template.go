package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// Templates let workspaces share rules and steps. A template is a name and a
// list of rules and steps, validated like a workspace's (names unique across
// the template's steps and rules, approvers known, and so on); it has no
// timing, apply or other workspace settings of its own. A workspace takes
// templates in with `use: [name, ...]`, and the merge is:
//
//   - The workspace's effective steps are the steps of its templates, in use
//     order and each template's in its own order, followed by the
//     workspace's own steps; likewise its rules. That is what
//     approval.Workspace.Steps and .Rules hold: nothing records where a gate
//     came from, so Version and the domain see only the result.
//   - Names stay unique across a workspace's effective steps and rules
//     together: two templates it uses may not both define a name (reported at
//     the second use), nor may a workspace rule take the name of a template's
//     step or the other way round.
//   - A workspace's own rule (step) with the name of a rule (step) of a
//     template it uses replaces it in place, at the template's position,
//     provided it is at least as strict; see weakens. A replacement that
//     would weaken the template is a problem, not silently applied.
//   - A template's rules and steps run on the timing of each workspace that
//     uses them, under their own overrides: their timing values are checked
//     once, at the template, and how they go with each workspace's timing
//     (an escalate_after needs an escalate_to to inherit, reminders must come
//     before the timeout) at that workspace's use entry.
//   - Warnings about a template's rules and steps are given once, at the
//     template, however many workspaces use it.
//   - A template no workspace uses changes nothing, so neither does editing
//     it change Version.

// template is a validated template.
type template struct {
	name, path string
	steps      []approval.Step
	rules      []approval.Rule
	// The timing of each step and rule as written, for checking against the
	// timing of each workspace that uses the template.
	stepTimings, ruleTimings []timingLevel
}

// templates validates the templates and returns them by name. Templates with
// malformed or duplicate names are kept under the first, so that a workspace
// using one is not also told it does not exist: one mistake, one problem.
func (v *validator) templates(raws []rawTemplate, dir directory) map[string]*template {
	out := map[string]*template{}
	for i, rt := range raws {
		p := indexPath("templates", i)
		t := &template{name: rt.Name, path: p}
		if v.name(p+".name", rt.Name) {
			if other, dup := out[rt.Name]; dup {
				v.add(p+".name", "duplicate template name %q (also %s)", rt.Name, other.path)
			}
		}
		if len(rt.Steps) == 0 && len(rt.Rules) == 0 {
			v.add(p, "required: at least one of rules or steps")
		}
		names := map[string]gateUse{}
		for j, rs := range rt.Steps {
			sp := indexPath(p+".steps", j)
			v.gateName(rs.Name, gateUse{kind: "step", path: sp}, names)
			s, l := v.step(sp, rs, dir, nil)
			t.steps = append(t.steps, s)
			t.stepTimings = append(t.stepTimings, l)
		}
		for j, rr := range rt.Rules {
			rp := indexPath(p+".rules", j)
			v.gateName(rr.Name, gateUse{kind: "rule", path: rp}, names)
			r, l := v.rule(rp, rr, dir, nil)
			t.rules = append(t.rules, r)
			t.ruleTimings = append(t.ruleTimings, l)
		}
		if _, dup := out[rt.Name]; rt.Name != "" && !dup {
			out[rt.Name] = t
		}
	}
	return out
}

// use takes the templates the workspace rw (at p) uses into w's steps and
// rules and records their names in gates, checking each template gate's
// timing against the workspace's ws unless the workspace replaces the gate.
func (v *validator) use(p string, rw rawWorkspace, templates map[string]*template, gates map[string]gateUse, w *Workspace, ws *timingLevel) {
	// The workspace's own gates, which replace a template's of their kind
	// and name: that gate's timing is not in effect, so not checked.
	type gateKey struct{ kind, name string }
	own := map[gateKey]bool{}
	for _, s := range rw.Steps {
		own[gateKey{"step", s.Name}] = true
	}
	for _, r := range rw.Rules {
		own[gateKey{"rule", r.Name}] = true
	}
	used := map[string]string{}
	for j, name := range rw.Use {
		up := indexPath(p+".use", j)
		t, ok := templates[name]
		switch other, dup := used[name]; {
		case name == "":
			v.add(up, "must not be empty: name a template")
			continue
		case dup:
			v.add(up, "template %q is already used (%s)", name, other)
			continue
		case !ok:
			v.add(up, "unknown template %q", name)
			continue
		}
		used[name] = up
		// add records a gate of t at index of w's steps or rules, and
		// reports whether it fits.
		add := func(kind, gate, gp string, index int, l timingLevel) bool {
			if other, dup := gates[gate]; dup && gate != "" {
				v.add(up, "template %q %s %q (%s) conflicts with template %q %s %q (%s): a workspace's steps and rules need unique names",
					name, kind, gate, gp, other.template, other.kind, gate, other.path)
				return false
			}
			if gate != "" {
				gates[gate] = gateUse{kind: kind, path: gp, template: name, index: index}
			}
			if !own[gateKey{kind, gate}] {
				v.templateTiming(up, name, kind, gate, gp, l, ws)
			}
			return true
		}
		for k, s := range t.steps {
			if add("step", s.Name, indexPath(t.path+".steps", k), len(w.Steps), t.stepTimings[k]) {
				w.Steps = append(w.Steps, s)
			}
		}
		for k, r := range t.rules {
			if add("rule", r.Name, indexPath(t.path+".rules", k), len(w.Rules), t.ruleTimings[k]) {
				w.Rules = append(w.Rules, r)
			}
		}
	}
}

// templateTiming checks how the timing l of template tmpl's gate (at gp) goes
// with the timing ws of a workspace using the template, reporting at the
// workspace's use entry up.
func (v *validator) templateTiming(up, tmpl, kind, gate, gp string, l timingLevel, ws *timingLevel) {
	sub := &validator{getenv: v.getenv}
	sub.timingRelations(gp, l, ws)
	for _, pr := range sub.problems {
		v.add(up, "template %q %s %q (%s): %s", tmpl, kind, gate, pr.Path, pr.Message)
	}
}

// gateView is what a step and a rule have in common, for comparing strictness.
type gateView struct {
	kind      string
	when      *approval.Conditions // nil for a step
	stage     approval.Stage
	approvers approval.Approvers
	min       int
	self      bool
	timing    approval.Timing
}

func stepGate(s approval.Step) gateView {
	return gateView{kind: "step", stage: s.Stage, approvers: s.Approvers, min: s.MinApprovals, self: s.AllowSelfApproval, timing: s.Timing}
}

func ruleGate(r approval.Rule) gateView {
	return gateView{kind: "rule", when: &r.When, stage: r.Stage, approvers: r.Approvers, min: r.MinApprovals, self: r.AllowSelfApproval, timing: r.Timing}
}

// weakens reports, at p, each way in which a workspace's own gate would
// weaken the template gate tmpl (of template use.template) it replaces, in a
// workspace whose timing is ws. A replacement is at least as strict when it
//
//   - has the same when (deep-equal: a rule that matches fewer plans asks
//     for fewer approvals, one that matches more is another rule);
//   - opens at the same stage or an earlier one (post_plan < pre_apply <
//     post_apply);
//   - asks for at least as many approvals;
//   - names the same approvers (as sets of users, groups and roles):
//     narrowing or widening them changes who decides;
//   - does not allow self-approval where the template does not;
//   - in its timing in effect (its overrides over the workspace's), times
//     out no later, escalates no later (nor stops escalating), escalates to
//     the same people, or does not escalate where the template does not
//     (escalate_to may then approve too: who decides), reminds at least as
//     often (nor stops), and reminds before the deadline no later (nor
//     stops).
func (v *validator) weakens(p, name string, use gateUse, tmpl, own gateView, ws approval.Timing) {
	weaken := func(format string, args ...any) {
		v.add(p, "would weaken template %q %s %q: %s", use.template, tmpl.kind, name, fmt.Sprintf(format, args...))
	}
	if tmpl.when != nil && own.when != nil && !reflect.DeepEqual(*tmpl.when, *own.when) {
		weaken("when %s differs from the template's %s: a replacement keeps the conditions", jsonOf(*own.when), jsonOf(*tmpl.when))
	}
	if own.stage.Valid() && tmpl.stage.Valid() && own.stage.Rank() > tmpl.stage.Rank() {
		weaken("stage %s is later than the template's %s", own.stage, tmpl.stage)
	}
	if own.min < tmpl.min {
		weaken("min_approvals %d is fewer than the template's %d", own.min, tmpl.min)
	}
	if !sameApprovers(own.approvers, tmpl.approvers) {
		weaken("approvers %s differ from the template's %s: a replacement may not change who decides", jsonOf(own.approvers), jsonOf(tmpl.approvers))
	}
	if own.self && !tmpl.self {
		weaken("allow_self_approval is on, the template's is off")
	}

	// Both run on the workspace's timing under their own overrides.
	t, o := effective(tmpl.timing, ws), effective(own.timing, ws)
	if o.Timeout > t.Timeout {
		weaken("timeout %s is longer than the template's %s", formatDuration(o.Timeout), formatDuration(t.Timeout))
	}
	tEsc, oEsc := t.EscalateAfter > 0 && !t.EscalateTo.Empty(), o.EscalateAfter > 0 && !o.EscalateTo.Empty()
	switch {
	case tEsc && !oEsc:
		weaken("it does not escalate; the template's escalates after %s", formatDuration(t.EscalateAfter))
	case !tEsc && oEsc:
		weaken("it escalates to %s, who could then approve; the template's does not escalate", jsonOf(o.EscalateTo))
	case tEsc:
		if o.EscalateAfter > t.EscalateAfter {
			weaken("escalate_after %s is later than the template's %s", formatDuration(o.EscalateAfter), formatDuration(t.EscalateAfter))
		}
		if !sameApprovers(o.EscalateTo, t.EscalateTo) {
			weaken("escalate_to %s differs from the template's %s: a replacement may not change who decides", jsonOf(o.EscalateTo), jsonOf(t.EscalateTo))
		}
	}
	switch {
	case t.RemindEvery > 0 && o.RemindEvery == 0:
		weaken("it drops the template's remind_every %s", formatDuration(t.RemindEvery))
	case t.RemindEvery > 0 && o.RemindEvery > t.RemindEvery:
		weaken("remind_every %s is longer than the template's %s", formatDuration(o.RemindEvery), formatDuration(t.RemindEvery))
	}
	switch {
	case t.RemindBefore > 0 && o.RemindBefore == 0:
		weaken("it drops the template's remind_before %s", formatDuration(t.RemindBefore))
	case t.RemindBefore > 0 && o.RemindBefore < t.RemindBefore:
		weaken("remind_before %s is shorter than the template's %s: the reminder would come later", formatDuration(o.RemindBefore), formatDuration(t.RemindBefore))
	}
}

// effective is a gate's timing in effect in a workspace whose timing is ws.
func effective(t, ws approval.Timing) approval.Timing {
	return t.Over(ws).Resolved()
}

// sameApprovers reports whether a and b name the same users, groups and
// roles, in whatever order.
func sameApprovers(a, b approval.Approvers) bool {
	return sameSet(a.Users, b.Users) && sameSet(a.Groups, b.Groups) && sameSet(a.Roles, b.Roles)
}

func sameSet[S ~[]E, E ~string](a, b S) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

// jsonOf writes a condition or approver spec compactly for a message.
func jsonOf(x any) string {
	data, err := json.Marshal(x)
	if err != nil {
		return fmt.Sprintf("%+v", x)
	}
	return string(data)
}
