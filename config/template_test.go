package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// templateUsers are the users of the template tests.
const templateUsers = `users:
  - {id: alice, email: alice@x, groups: [platform], roles: [approver]}
  - {id: bob, email: bob@x, groups: [platform], roles: [approver]}
  - {id: carol, email: carol@x, groups: [platform], roles: [approver]}
  - {id: dave, email: dave@x, groups: [security], roles: [approver]}
  - {id: erin, email: erin@x, roles: [admin]}
`

// baseline is a template of one rule and one step, each with timing
// overrides, for the tests of replacing them.
const baseline = `templates:
  - name: baseline
    steps:
      - name: sign-off
        stage: pre_apply
        approvers: {groups: [security]}
    rules:
      - name: destroys-need-two
        when: {destroys_gt: 0}
        approvers: {groups: [platform]}
        min_approvals: 2
        timeout: 2h
        remind_every: 30m
        remind_before: 20m
        escalate_after: 1h
        escalate_to: {users: [erin]}
`

// gateNames lists a workspace's steps or rules by name.
func gateNames[G approval.Step | approval.Rule](gates []G) []string {
	var out []string
	for _, g := range gates {
		switch g := any(g).(type) {
		case approval.Step:
			out = append(out, g.Name)
		case approval.Rule:
			out = append(out, g.Name)
		}
	}
	return out
}

func TestTemplatesMerge(t *testing.T) {
	c := mustParse(t, templateUsers+`templates:
  - name: t1
    steps:
      - {name: s1, stage: post_apply, approvers: {users: [dave, erin]}}
    rules:
      - {name: a, approvers: {groups: [platform]}}
      - {name: b, stage: pre_apply, when: {destroys_gt: 0}, approvers: {groups: [platform]}, min_approvals: 2}
  - name: t2
    rules:
      - {name: c, when: {resource_types: ["aws_iam_*"]}, approvers: {groups: [security, platform]}}
  - name: unused
    rules:
      - {name: z, approvers: {users: [erin]}, allow_self_approval: true}
workspaces:
  - name: ws
    use: [t2, t1]
    steps:
      - {name: s0, stage: pre_apply, approvers: {groups: [platform]}}
    rules:
      - {name: d, approvers: {groups: [platform]}}
      # Replaces t1's b in place: stricter, at an earlier stage.
      - {name: b, stage: post_plan, when: {destroys_gt: 0}, approvers: {groups: [platform]}, min_approvals: 2}
  - name: plain
`)
	w := c.Workspaces[0]
	if got, want := gateNames(w.Steps), []string{"s1", "s0"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got steps %q; want %q (the templates', then the workspace's)", got, want)
	}
	if got, want := gateNames(w.Rules), []string{"c", "a", "b", "d"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got rules %q; want %q (the templates' in use order, then the workspace's)", got, want)
	}
	wantB := approval.Rule{Name: "b", Stage: approval.StagePostPlan, When: approval.Conditions{DestroysGT: intp(0)},
		Approvers: approval.Approvers{Groups: []string{"platform"}}, MinApprovals: 2}
	if len(w.Rules) == 4 && !reflect.DeepEqual(w.Rules[2], wantB) {
		t.Errorf("got rule b %+v; want the workspace's %+v", w.Rules[2], wantB)
	}
	if w := c.Workspaces[1]; w.Steps != nil || w.Rules != nil {
		t.Errorf("workspace plain: got steps %+v, rules %+v; want none", w.Steps, w.Rules)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("got warnings %q; want none", w)
	}
}

func TestTemplateReplacementsAtLeastAsStrict(t *testing.T) {
	tests := []struct {
		name, rules, steps string
	}{
		{"the same rule", "      - {name: destroys-need-two, when: {destroys_gt: 0}, approvers: {groups: [platform]}, min_approvals: 2, timeout: 2h, remind_every: 30m, remind_before: 20m, escalate_after: 1h, escalate_to: {users: [erin]}}\n", ""},
		{"more approvals, earlier, and chased harder", "      - name: destroys-need-two\n        stage: post_plan\n        when: {destroys_gt: 0}\n        approvers: {groups: [platform]}\n        min_approvals: 3\n        timeout: 90m\n        remind_every: 10m\n        remind_before: 30m\n        escalate_after: 45m\n        escalate_to: {users: [erin]}\n", ""},
		{"approvers in another order", "      - {name: destroys-need-two, when: {destroys_gt: 0}, approvers: {groups: [platform, platform]}, min_approvals: 2, timeout: 2h, remind_every: 30m, remind_before: 20m, escalate_after: 1h, escalate_to: {users: [erin]}}\n", ""},
		{"a step at an earlier stage", "", "      - {name: sign-off, stage: post_plan, approvers: {groups: [security]}}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := templateUsers + baseline + "workspaces:\n  - name: ws\n    use: [baseline]\n"
			if tt.steps != "" {
				src += "    steps:\n" + tt.steps
			}
			if tt.rules != "" {
				src += "    rules:\n" + tt.rules
			}
			w := mustParse(t, src).Workspaces[0]
			if len(w.Rules) != 1 || len(w.Steps) != 1 {
				t.Fatalf("got steps %q and rules %q; want one of each, replaced in place", gateNames(w.Steps), gateNames(w.Rules))
			}
		})
	}

	t.Run("the replacement is what the workspace gets", func(t *testing.T) {
		w := mustParse(t, templateUsers+baseline+`workspaces:
  - name: ws
    use: [baseline]
    rules:
      - {name: mine, approvers: {users: [erin]}, allow_self_approval: true}
      - {name: destroys-need-two, when: {destroys_gt: 0}, approvers: {groups: [platform]}, min_approvals: 3, timeout: 1h, remind_every: 30m, remind_before: 20m, escalate_after: 50m, escalate_to: {users: [erin]}}
`).Workspaces[0]
		want := []approval.Rule{
			{Name: "destroys-need-two", Stage: approval.StagePostPlan, When: approval.Conditions{DestroysGT: intp(0)},
				Approvers: approval.Approvers{Groups: []string{"platform"}}, MinApprovals: 3,
				Timing: approval.Timing{Timeout: time.Hour, RemindEvery: 30 * time.Minute, RemindBefore: 20 * time.Minute,
					EscalateAfter: 50 * time.Minute, EscalateTo: approval.Approvers{Users: []approval.UserID{"erin"}}}},
			{Name: "mine", Stage: approval.StagePostPlan, Approvers: approval.Approvers{Users: []approval.UserID{"erin"}},
				MinApprovals: 1, AllowSelfApproval: true},
		}
		if !reflect.DeepEqual(w.Rules, want) {
			t.Errorf("got rules\n%+v\nwant\n%+v", w.Rules, want)
		}
	})

	t.Run("inherited timing counts as the template's does", func(t *testing.T) {
		// The template's rule inherits the workspace's timing; so may its
		// replacement, or override it with the same or stricter values.
		mustParse(t, templateUsers+`templates:
  - name: t
    rules:
      - {name: r, approvers: {groups: [platform]}}
workspaces:
  - name: ws
    use: [t]
    timeout: 3h
    remind_every: 1h
    escalate_after: 2h
    escalate_to: {users: [erin]}
    rules:
      - {name: r, approvers: {groups: [platform]}, timeout: 3h, remind_every: 45m}
`)
	})
}

func TestTemplateReplacementsThatWeaken(t *testing.T) {
	const same = "name: destroys-need-two, when: {destroys_gt: 0}, approvers: {groups: [platform]}, min_approvals: 2, timeout: 2h, remind_every: 30m, remind_before: 20m"
	const escalation = ", escalate_after: 1h, escalate_to: {users: [erin]}"
	const prefix = `would weaken template "baseline" rule "destroys-need-two": `
	tests := []struct {
		name, rule string
		want       []string // messages after prefix, each at workspaces[0].rules[0]
	}{
		{"other conditions", strings.Replace(same, "{destroys_gt: 0}", "{destroys_gt: 1}", 1) + escalation,
			[]string{`when {"destroys_gt":1} differs from the template's {"destroys_gt":0}: a replacement keeps the conditions`}},
		{"more conditions", strings.Replace(same, "{destroys_gt: 0}", "{destroys_gt: 0, environment: production}", 1) + escalation,
			[]string{`when {"destroys_gt":0,"environment":"production"} differs from the template's {"destroys_gt":0}`}},
		{"no conditions", strings.Replace(same, "when: {destroys_gt: 0}, ", "", 1) + escalation,
			[]string{`when {} differs from the template's {"destroys_gt":0}`}},
		{"a later stage", same + ", stage: pre_apply" + escalation,
			[]string{"stage pre_apply is later than the template's post_plan"}},
		{"fewer approvals", strings.Replace(same, "min_approvals: 2", "min_approvals: 1", 1) + escalation,
			[]string{"min_approvals 1 is fewer than the template's 2"}},
		{"the default of one approval", strings.Replace(same, "min_approvals: 2, ", "", 1) + escalation,
			[]string{"min_approvals 1 is fewer than the template's 2"}},
		{"fewer approvers", strings.Replace(same, "{groups: [platform]}", "{users: [alice, bob]}", 1) + escalation,
			[]string{`approvers {"users":["alice","bob"]} differ from the template's {"groups":["platform"]}: a replacement may not change who decides`}},
		{"more approvers", strings.Replace(same, "{groups: [platform]}", "{groups: [platform], users: [erin]}", 1) + escalation,
			[]string{`approvers {"users":["erin"],"groups":["platform"]} differ from the template's {"groups":["platform"]}`}},
		{"self-approval", same + ", allow_self_approval: true" + escalation,
			[]string{"allow_self_approval is on, the template's is off"}},
		{"a longer timeout", strings.Replace(same, "timeout: 2h", "timeout: 3h", 1) + escalation,
			[]string{"timeout 3h is longer than the template's 2h"}},
		{"the workspace's longer timeout", strings.Replace(same, "timeout: 2h, ", "", 1) + escalation,
			[]string{"timeout 4h is longer than the template's 2h"}},
		{"no escalation", same,
			[]string{"it does not escalate; the template's escalates after 1h"}},
		{"a later escalation", same + ", escalate_after: 90m, escalate_to: {users: [erin]}",
			[]string{"escalate_after 1h30m is later than the template's 1h"}},
		{"escalation to others", same + ", escalate_after: 1h, escalate_to: {users: [erin], groups: [security]}",
			[]string{`escalate_to {"users":["erin"],"groups":["security"]} differs from the template's {"users":["erin"]}: a replacement may not change who decides`}},
		{"no reminders", strings.Replace(same, ", remind_every: 30m", "", 1) + escalation,
			[]string{"it drops the template's remind_every 30m"}},
		{"rarer reminders", strings.Replace(same, "remind_every: 30m", "remind_every: 1h", 1) + escalation,
			[]string{"remind_every 1h is longer than the template's 30m"}},
		{"no reminder before the deadline", strings.Replace(same, ", remind_before: 20m", "", 1) + escalation,
			[]string{"it drops the template's remind_before 20m"}},
		{"a later reminder before the deadline", strings.Replace(same, "remind_before: 20m", "remind_before: 10m", 1) + escalation,
			[]string{"remind_before 10m is shorter than the template's 20m: the reminder would come later"}},
		{"every way at once", "name: destroys-need-two, stage: post_apply, approvers: {users: [alice]}, allow_self_approval: true, timeout: 5h",
			[]string{
				`when {} differs`, "stage post_apply is later", "min_approvals 1 is fewer", `approvers {"users":["alice"]} differ`,
				"allow_self_approval is on", "timeout 5h is longer", "it does not escalate", "it drops the template's remind_every",
				"it drops the template's remind_before",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := templateUsers + baseline + "workspaces:\n  - name: ws\n    use: [baseline]\n    rules:\n      - {" + tt.rule + "}\n"
			var want []Problem
			for _, m := range tt.want {
				want = append(want, Problem{"workspaces[0].rules[0]", prefix + m})
			}
			checkProblems(t, problemsOf(t, src), want)
		})
	}

	t.Run("adding an escalation", func(t *testing.T) {
		src := templateUsers + `templates:
  - name: t
    rules:
      - {name: r, approvers: {groups: [platform]}}
workspaces:
  - name: ws
    use: [t]
    rules:
      - {name: r, approvers: {groups: [platform]}, escalate_after: 1h, escalate_to: {users: [erin]}}
`
		checkProblems(t, problemsOf(t, src), []Problem{{"workspaces[0].rules[0]",
			`would weaken template "t" rule "r": it escalates to {"users":["erin"]}, who could then approve; the template's does not escalate`}})
	})

	t.Run("a step", func(t *testing.T) {
		src := templateUsers + baseline + "workspaces:\n  - name: ws\n    use: [baseline]\n    steps:\n      - {name: sign-off, stage: post_apply, approvers: {groups: [security]}, min_approvals: 1}\n"
		checkProblems(t, problemsOf(t, src), []Problem{{"workspaces[0].steps[0]",
			`would weaken template "baseline" step "sign-off": stage post_apply is later than the template's pre_apply`}})
	})
}

func TestTemplateProblems(t *testing.T) {
	const t1 = "  - {name: t1, rules: [{name: x, approvers: {groups: [platform]}}]}\n"
	const t2 = "  - {name: t2, rules: [{name: x, approvers: {groups: [platform]}}]}\n"
	const t3 = "  - {name: t3, steps: [{name: x, stage: pre_apply, approvers: {groups: [platform]}}]}\n"
	tests := []struct {
		name string
		src  string
		want []Problem
	}{
		{"unknown template", "templates:\n" + t1 + "workspaces:\n  - {name: ws, use: [t1, t9]}\n",
			[]Problem{{"workspaces[0].use[1]", `unknown template "t9"`}}},
		{"no templates at all", "workspaces:\n  - {name: ws, use: [baseline]}\n",
			[]Problem{{"workspaces[0].use[0]", `unknown template "baseline"`}}},
		{"empty template name", "templates:\n" + t1 + "workspaces:\n  - {name: ws, use: [\"\"]}\n",
			[]Problem{{"workspaces[0].use[0]", "must not be empty"}}},
		{"template used twice", "templates:\n" + t1 + "workspaces:\n  - {name: ws, use: [t1, t1]}\n",
			[]Problem{{"workspaces[0].use[1]", `template "t1" is already used (workspaces[0].use[0])`}}},
		{"use not a list", "templates:\n" + t1 + "workspaces:\n  - {name: ws, use: t1}\n",
			[]Problem{{"workspaces[0].use", "expected a list"}}},
		{"two templates with one rule name", "templates:\n" + t1 + t2 + "workspaces:\n  - {name: ws, use: [t1, t2]}\n",
			[]Problem{{"workspaces[0].use[1]", `template "t2" rule "x" (templates[1].rules[0]) conflicts with template "t1" rule "x" (templates[0].rules[0]): a workspace's steps and rules need unique names`}}},
		{"a template's step and another's rule", "templates:\n" + t1 + t3 + "workspaces:\n  - {name: ws, use: [t3, t1]}\n",
			[]Problem{{"workspaces[0].use[1]", `template "t1" rule "x" (templates[0].rules[0]) conflicts with template "t3" step "x" (templates[1].steps[0])`}}},
		{"conflicting templates in different workspaces", "templates:\n" + t1 + t2 + "workspaces:\n  - {name: a, use: [t1]}\n  - {name: b, use: [t2]}\n", nil},
		{"a workspace rule with a template step's name", "templates:\n" + t3 + "workspaces:\n  - {name: ws, use: [t3], rules: [{name: x, approvers: {groups: [platform]}}]}\n",
			[]Problem{{"workspaces[0].rules[0].name", `name already used by step "x" (templates[0].steps[0]): steps and rules share one namespace`}}},
		{"two workspace rules replacing one template rule", "templates:\n" + t1 + "workspaces:\n  - {name: ws, use: [t1], rules: [{name: x, approvers: {groups: [platform]}}, {name: x, approvers: {groups: [platform]}}]}\n",
			[]Problem{{"workspaces[0].rules[1].name", `duplicate rule name "x" (also workspaces[0].rules[0])`}}},

		// The templates themselves.
		{"template name missing", "templates:\n  - {rules: [{name: x, approvers: {groups: [platform]}}]}\nworkspaces:\n  - name: ws\n",
			[]Problem{{"templates[0].name", "required"}}},
		{"template name malformed", "templates:\n  - {name: Base Line, rules: [{name: x, approvers: {groups: [platform]}}]}\nworkspaces:\n  - {name: ws, use: [Base Line]}\n",
			[]Problem{{"templates[0].name", "must match"}}},
		{"template name duplicate", "templates:\n" + t1 + t1 + "workspaces:\n  - name: ws\n",
			[]Problem{{"templates[1].name", `duplicate template name "t1" (also templates[0])`}}},
		{"template without rules or steps", "templates:\n  - {name: t, rules: []}\nworkspaces:\n  - name: ws\n",
			[]Problem{{"templates[0]", "required: at least one of rules or steps"}}},
		{"template with workspace keys", "templates:\n  - {name: t, timeout: 1h, use: [t], rules: [{name: x, approvers: {groups: [platform]}}]}\nworkspaces:\n  - name: ws\n",
			[]Problem{{"templates[0].timeout", "unknown field"}, {"templates[0].use", "unknown field"}}},
		{"templates not a list", "templates: {name: t}\nworkspaces:\n  - name: ws\n",
			[]Problem{{"templates", "expected a list"}}},
		{"template rule problems", "templates:\n  - name: t\n    rules:\n      - {name: x, when: {actions: [destroy]}, approvers: {users: [zed]}, min_approvals: 0, timeout: soon}\n      - {name: x, stage: later, approvers: {roles: [viewer]}}\nworkspaces:\n  - name: ws\n",
			[]Problem{
				{"templates[0].rules[0].when.actions[0]", `unknown action "destroy"`},
				{"templates[0].rules[0].approvers.users[0]", `unknown user "zed"`},
				{"templates[0].rules[0].min_approvals", "must be >= 1"},
				{"templates[0].rules[0].timeout", `"soon" is not a duration`},
				{"templates[0].rules[1].name", `duplicate rule name "x" (also templates[0].rules[0])`},
				{"templates[0].rules[1].stage", `unknown stage "later"`},
				{"templates[0].rules[1].approvers.roles[0]", "viewers may not approve"},
			}},
		{"template step problems", "templates:\n  - name: t\n    steps:\n      - {name: x, approvers: {groups: [ops]}}\n    rules:\n      - {name: x, approvers: {groups: [platform]}}\nworkspaces:\n  - name: ws\n",
			[]Problem{
				{"templates[0].steps[0].stage", "required"},
				{"templates[0].steps[0].approvers.groups[0]", `no user is in group "ops"`},
				{"templates[0].rules[0].name", `name already used by step "x" (templates[0].steps[0])`},
			}},

		// A template's timing, in each workspace that uses it.
		{"template escalate_after with nothing to inherit", "templates:\n  - {name: t, rules: [{name: r, approvers: {groups: [platform]}, escalate_after: 1h}]}\n" +
			"workspaces:\n  - {name: a, use: [t], escalate_after: 2h, escalate_to: {users: [erin]}}\n  - {name: b, use: [t]}\n",
			[]Problem{{"workspaces[1].use[0]", `template "t" rule "r" (templates[0].rules[0].escalate_to): required with escalate_after: the workspace has no escalate_to to inherit`}}},
		{"template reminder after the workspace's timeout", "templates:\n  - {name: t, steps: [{name: s, stage: pre_apply, approvers: {groups: [platform]}, remind_before: 3h}]}\n" +
			"workspaces:\n  - {name: a, use: [t], timeout: 2h}\n  - {name: b, use: [t], timeout: 8h}\n",
			[]Problem{{"workspaces[0].use[0]", `template "t" step "s" (templates[0].steps[0].remind_before): remind_before 3h is not before the 2h timeout: the reminder could never be sent`}}},
		{"template timeout before the workspace's reminder", "templates:\n  - {name: t, rules: [{name: r, approvers: {groups: [platform]}, timeout: 30m}]}\n" +
			"workspaces:\n  - {name: a, use: [t], remind_every: 1h}\n",
			[]Problem{{"workspaces[0].use[0]", `template "t" rule "r" (templates[0].rules[0].timeout): the 30m timeout is not after remind_every 1h (inherited from the workspace)`}}},
		{"a replaced template rule's timing is not in effect", "templates:\n  - {name: t, rules: [{name: r, approvers: {groups: [platform]}, remind_before: 3h}]}\n" +
			"workspaces:\n  - {name: a, use: [t], timeout: 2h, rules: [{name: r, approvers: {groups: [platform]}, remind_before: 1h}]}\n",
			[]Problem{{"workspaces[0].rules[0]", `would weaken template "t" rule "r": remind_before 1h is shorter than the template's 3h`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := templateUsers + tt.src
			if tt.want == nil {
				mustParse(t, src)
				return
			}
			checkProblems(t, problemsOf(t, src), tt.want)
		})
	}
}

func TestTemplatesAndVersion(t *testing.T) {
	inline := mustParse(t, templateUsers+`workspaces:
  - name: ws
    rules:
      - {name: destroys-need-two, when: {destroys_gt: 0}, approvers: {groups: [platform]}, min_approvals: 2}
      - {name: own, approvers: {groups: [security]}}
`).Version

	const template = `templates:
  - name: t
    rules:
      - {name: destroys-need-two, when: {destroys_gt: 0}, approvers: {groups: [platform]}, min_approvals: 2}
`
	const workspace = `workspaces:
  - name: ws
    use: [t]
    rules:
      - {name: own, approvers: {groups: [security]}}
`
	if got := mustParse(t, templateUsers+template+workspace).Version; got != inline {
		t.Errorf("got version %s with the rule moved into a template; want %s, as inline", got, inline)
	}
	unused := template + "  - {name: unused, rules: [{name: x, approvers: {users: [erin]}}]}\n"
	if got := mustParse(t, templateUsers+unused+workspace).Version; got != inline {
		t.Errorf("got version %s with an unused template added; want %s", got, inline)
	}
	edited := strings.Replace(template, "min_approvals: 2", "min_approvals: 3", 1)
	if got := mustParse(t, templateUsers+edited+workspace).Version; got == inline {
		t.Errorf("got unchanged version %s after editing a template rule in use; want a different one", got)
	}
}
