package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// baseUsers is a valid users section for tests about other parts.
const baseUsers = `users:
  - {id: alice, email: alice@example.com, groups: [platform], roles: [approver], token: dev-alice}
  - {id: bob, email: bob@example.com, groups: [platform], roles: [approver], token: dev-bob}
  - {id: vic, email: vic@example.com, groups: [audit], roles: [viewer], token: dev-vic}
`

// baseWorkspaces is a valid workspaces section for tests about users.
const baseWorkspaces = `workspaces:
  - name: ws
`

// ws builds a config of the base users and one workspace whose body (indented
// under the list item) is given.
func ws(body string) string {
	return baseUsers + "workspaces:\n  - name: ws\n" + body
}

// rule builds a config whose only workspace has one rule with the given body.
func rule(body string) string {
	return ws("    rules:\n      - name: r\n" + body)
}

// step builds a config whose only workspace has one step with the given body.
func step(body string) string {
	return ws("    steps:\n      - name: s\n" + body)
}

func intp(n int) *int { return &n }

func floatp(x float64) *float64 { return &x }

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// testEnv is the environment the tests parse configurations in, so that they
// do not depend on the one they run in. TestParseReadsTheEnvironment checks
// that Parse and Load read the real one.
var testEnv = map[string]string{
	"GATEHOUSE_TEST_WEBHOOK_SECRET": "dev-only-secret",
	"GATEHOUSE_TEST_EMPTY":          "",
}

func testGetenv(name string) string { return testEnv[name] }

// parseTest is Parse in testEnv.
func parseTest(src string) (*Config, error) {
	return parse([]byte(src), "", testGetenv)
}

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := parseTest(src)
	if err != nil {
		t.Fatalf("Parse: unexpected error:\n%v\nconfig:\n%s", err, src)
	}
	return c
}

// problemsOf parses src, which must be invalid, and returns its problems.
func problemsOf(t *testing.T, src string) []Problem {
	t.Helper()
	c, err := parseTest(src)
	if err == nil {
		t.Fatalf("Parse = %+v, nil; want a *ValidationError\nconfig:\n%s", c, src)
	}
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Parse error = %T %v; want *ValidationError", err, err)
	}
	return verr.Problems
}

// wantProblemAt parses src, a top-level block, beside a workspace and
// fails unless one of its problems is at path.
func wantProblemAt(t *testing.T, src, path string) {
	t.Helper()
	problems := problemsOf(t, src+ws(""))
	for _, p := range problems {
		if p.Path == path {
			return
		}
	}
	t.Errorf("%s: problems %v; want one at %s", strings.TrimSpace(src), problems, path)
}

// checkProblems asserts that got has exactly want's paths, in order, and that
// each message contains want's message.
func checkProblems(t *testing.T, got, want []Problem) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d problems %q; want %d %q", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i].Path != want[i].Path {
			t.Errorf("problem %d: got path %q (%s); want %q", i, got[i].Path, got[i].Message, want[i].Path)
		}
		if !strings.Contains(got[i].Message, want[i].Message) {
			t.Errorf("problem %d at %q: got message %q; want it to contain %q", i, got[i].Path, got[i].Message, want[i].Message)
		}
	}
}

func TestParseFullConfigAppliesDefaults(t *testing.T) {
	c := mustParse(t, readFile(t, "testdata/full.yaml"))

	wantUsers := []User{
		{
			Identity: approval.Identity{ID: "alice", Email: "alice@example.com", Source: approval.SourceSSO,
				Groups: []string{"platform"}, Roles: []approval.Role{approval.RoleApprover}},
			Token:       "dev-alice",
			TokenSHA256: sha("dev-alice"),
		},
		{
			Identity: approval.Identity{ID: "bob", Email: "bob@example.com", Source: approval.SourceLocal,
				Groups: []string{"platform", "security"}, Roles: []approval.Role{approval.RoleApprover, approval.RoleAdmin}},
			TokenSHA256: sha("secret-bob"),
		},
		{
			Identity: approval.Identity{ID: "carol", Email: "carol@example.com", Source: approval.SourceSSO,
				Groups: []string{"security"}, Roles: []approval.Role{approval.RoleViewer}},
		},
		{
			Identity:    approval.Identity{ID: "ci-bot", Email: "ci@example.com", Source: approval.SourceLocal, Automation: true},
			Token:       "dev-ci",
			TokenSHA256: sha("dev-ci"),
		},
	}
	if !reflect.DeepEqual(c.Users, wantUsers) {
		t.Errorf("got users\n%+v\nwant\n%+v", c.Users, wantUsers)
	}

	wantWorkspaces := []Workspace{
		{
			Workspace: approval.Workspace{
				Name: "prod-network", Environment: "production", OnTimeout: approval.OutcomeCancel,
				Tags: []string{"pci", "network"}, AllowBypass: true, Mode: approval.ModeCommand, Supersede: true,
				Timing: approval.Timing{
					Timeout: 2 * time.Hour, RemindEvery: 30 * time.Minute, RemindBefore: 15 * time.Minute,
					EscalateAfter: time.Hour, EscalateTo: approval.Approvers{Users: []approval.UserID{"bob"}},
				},
				// The template's steps and rules come first.
				Steps: []approval.Step{
					{
						Name:         "change-ticket",
						Stage:        approval.StagePreApply,
						Approvers:    approval.Approvers{Groups: []string{"platform"}},
						MinApprovals: 1,
					},
					{
						Name:              "security-signoff",
						Stage:             approval.StagePostApply,
						Approvers:         approval.Approvers{Groups: []string{"security"}},
						MinApprovals:      1,
						AllowSelfApproval: true,
						// Only what the step overrides: escalate_after is the workspace's.
						Timing: approval.Timing{EscalateTo: approval.Approvers{Groups: []string{"security"}}},
					},
				},
				Rules: []approval.Rule{
					{
						Name:  "costly-deletes",
						Stage: approval.StagePreApply,
						When: approval.Conditions{
							ReplacesGT: intp(1), ResourcesGT: intp(10),
							Actions:            []approval.Action{approval.ActionDelete, approval.ActionReplace},
							ResourceTypes:      []string{"aws_*", "google_?ompute_*"},
							Providers:          []string{"registry.terraform.io/hashicorp/*"},
							Tags:               []string{"pci"},
							MonthlyCostDeltaGT: floatp(-99.5), MonthlyCostGT: floatp(1000),
						},
						Approvers:         approval.Approvers{Groups: []string{"platform"}, Roles: []approval.Role{approval.RoleAdmin}},
						MinApprovals:      2,
						AllowSelfApproval: true,
						Timing:            approval.Timing{RemindBefore: 10 * time.Minute},
					},
					{
						Name:              "destroys-need-two",
						Stage:             approval.StagePostPlan,
						When:              approval.Conditions{DestroysGT: intp(0), Environment: "production"},
						Approvers:         approval.Approvers{Users: []approval.UserID{"bob"}, Groups: []string{"platform"}, Roles: []approval.Role{approval.RoleApprover}},
						MinApprovals:      2,
						AllowSelfApproval: true,
						Timing: approval.Timing{
							// escalate_to is left to inherit from the workspace.
							Timeout: 90 * time.Minute, RemindEvery: 20 * time.Minute, EscalateAfter: 45 * time.Minute,
						},
					},
					{
						Name:         "adds",
						Stage:        approval.StagePreApply,
						When:         approval.Conditions{AddsGT: intp(5), ChangesGT: intp(0)},
						Approvers:    approval.Approvers{Users: []approval.UserID{"alice"}, Groups: []string{"security"}},
						MinApprovals: 1, // default
					},
				},
			},
			// Parse keeps dir as written: there is no file to resolve it against.
			Apply:  &Apply{Command: []string{"./apply.sh", "--yes"}, Dir: "scripts", Timeout: 10 * time.Minute},
			Notify: &Notify{Webhook: &Webhook{URL: "https://hooks.example.com/gatehouse", Secret: "dev-only-secret"}},
		},
		{
			// Every default: timeout, no reminders or escalation,
			// on_timeout, no bypass, no apply, no notify, no steps, no rules.
			Workspace: approval.Workspace{Name: "staging", Timing: approval.Timing{Timeout: approval.DefaultTimeout},
				OnTimeout: approval.OutcomeReject, Mode: approval.ModeGate, Supersede: true},
		},
	}
	if !reflect.DeepEqual(c.Workspaces, wantWorkspaces) {
		t.Errorf("got workspaces\n%+v\nwant\n%+v", c.Workspaces, wantWorkspaces)
	}
	if len(c.Version) != 64 || strings.Trim(c.Version, "0123456789abcdef") != "" {
		t.Errorf("got Version %q; want 64 lower-case hex digits", c.Version)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("got warnings %q; want none", w)
	}
}

func TestParseApplyDefaults(t *testing.T) {
	c := mustParse(t, ws("    apply: {command: [make, apply]}\n"))
	want := &Apply{Command: []string{"make", "apply"}, Dir: ".", Timeout: time.Hour}
	if got := c.Workspaces[0].Apply; !reflect.DeepEqual(got, want) {
		t.Errorf("got apply %+v; want %+v", got, want)
	}
}

func TestParseNewFieldDefaults(t *testing.T) {
	c := mustParse(t, baseUsers+`  - {id: ci, email: ci@example.com, token: dev-ci}
workspaces:
  - name: ws
    steps:
      - {name: on-call, stage: pre_apply, approvers: {users: [bob]}}
    rules:
      - {name: r, approvers: {users: [alice]}}
`)
	if u, _ := c.User("ci"); u.Automation {
		t.Errorf("user ci: got automation true; want the default false")
	}
	w := c.Workspaces[0]
	if w.AllowBypass {
		t.Errorf("got allow_bypass true; want the default false")
	}
	wantSteps := []approval.Step{{
		Name:         "on-call",
		Stage:        approval.StagePreApply,
		Approvers:    approval.Approvers{Users: []approval.UserID{"bob"}},
		MinApprovals: 1, // default
		// AllowSelfApproval defaults to false.
	}}
	if !reflect.DeepEqual(w.Steps, wantSteps) {
		t.Errorf("got steps %+v; want %+v", w.Steps, wantSteps)
	}
	if got := w.Rules[0].Stage; got != approval.StagePostPlan {
		t.Errorf("got rule stage %q; want the default %q", got, approval.StagePostPlan)
	}
}

func TestParseConditions(t *testing.T) {
	tests := []struct {
		when string
		want approval.Conditions
	}{
		{"{}", approval.Conditions{}},
		{"{replaces_gt: 0}", approval.Conditions{ReplacesGT: intp(0)}},
		{"{resources_gt: 20}", approval.Conditions{ResourcesGT: intp(20)}},
		{"{actions: [create, update, delete, replace]}", approval.Conditions{Actions: []approval.Action{
			approval.ActionCreate, approval.ActionUpdate, approval.ActionDelete, approval.ActionReplace}}},
		{`{resource_types: ["aws_iam_*", "aws_s3_bucket", "google_?ompute_instance"]}`,
			approval.Conditions{ResourceTypes: []string{"aws_iam_*", "aws_s3_bucket", "google_?ompute_instance"}}},
		{`{providers: ["registry.terraform.io/hashicorp/*", "*/aws"]}`,
			approval.Conditions{Providers: []string{"registry.terraform.io/hashicorp/*", "*/aws"}}},
		{"{environment: production}", approval.Conditions{Environment: "production"}},
		{"{tags: [pci, network]}", approval.Conditions{Tags: []string{"pci", "network"}}},
		{"{monthly_cost_delta_gt: 500}", approval.Conditions{MonthlyCostDeltaGT: floatp(500)}},
		{"{monthly_cost_delta_gt: -100}", approval.Conditions{MonthlyCostDeltaGT: floatp(-100)}},
		{"{monthly_cost_delta_gt: 0.5}", approval.Conditions{MonthlyCostDeltaGT: floatp(0.5)}},
		{"{monthly_cost_gt: 10000}", approval.Conditions{MonthlyCostGT: floatp(10000)}},
		{"{monthly_cost_gt: 1e3}", approval.Conditions{MonthlyCostGT: floatp(1000)}},
		{"{monthly_cost_gt: 0}", approval.Conditions{MonthlyCostGT: floatp(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) {
			c := mustParse(t, rule("        when: "+tt.when+"\n        approvers: {users: [bob]}\n"))
			if got := c.Workspaces[0].Rules[0].When; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got conditions %s; want %s", jsonOf(got), jsonOf(tt.want))
			}
		})
	}

	// The globs mean what approval's conditions make of them.
	c := mustParse(t, rule("        when: {resource_types: [\"aws_iam_*\"], providers: [\"*/hashicorp/aws\"]}\n        approvers: {users: [bob]}\n"))
	when := c.Workspaces[0].Rules[0].When
	for _, tt := range []struct {
		typ, provider string
		want          bool
	}{
		{"aws_iam_role", "registry.terraform.io/hashicorp/aws", true},
		{"aws_iam_", "registry.terraform.io/hashicorp/aws", true},
		{"aws_s3_bucket", "registry.terraform.io/hashicorp/aws", false},
		{"aws_iam_role", "registry.terraform.io/hashicorp/google", false},
	} {
		plan := approval.Summarize("", []approval.Resource{{Address: "x.y", Type: tt.typ, Provider: tt.provider, Actions: []approval.Action{approval.ActionCreate}}})
		if got, _ := when.Match(approval.Facts{Plan: plan}); got != tt.want {
			t.Errorf("%s from %s: got match %v; want %v", tt.typ, tt.provider, got, tt.want)
		}
	}
}

func TestParseTimingInheritance(t *testing.T) {
	c := mustParse(t, baseUsers+`workspaces:
  - name: ws
    timeout: 3h
    remind_every: 1h
    remind_before: 30m
    escalate_after: 2h
    escalate_to: {users: [alice]}
    steps:
      - {name: on-call, stage: pre_apply, approvers: {users: [bob]}, escalate_to: {groups: [platform]}}
    rules:
      - name: fast
        approvers: {users: [bob]}
        timeout: 90m
        remind_every: 15m
        escalate_after: 1h
      - {name: plain, approvers: {users: [bob]}}
`)
	w := c.Workspaces[0]
	alice := approval.Approvers{Users: []approval.UserID{"alice"}}
	platform := approval.Approvers{Groups: []string{"platform"}}
	wantWorkspace := approval.Timing{Timeout: 3 * time.Hour, RemindEvery: time.Hour, RemindBefore: 30 * time.Minute,
		EscalateAfter: 2 * time.Hour, EscalateTo: alice}
	if !reflect.DeepEqual(w.Timing, wantWorkspace) {
		t.Errorf("got workspace timing %+v; want %+v", w.Timing, wantWorkspace)
	}

	// Each step and rule holds its overrides only; zero fields inherit.
	// A rule overriding escalate_after alone holds only that override; the
	// domain inherits the workspace's escalate_to (the effective timings
	// below).
	wantOverrides := map[string]approval.Timing{
		"on-call": {EscalateTo: platform},
		"fast":    {Timeout: 90 * time.Minute, RemindEvery: 15 * time.Minute, EscalateAfter: time.Hour},
		"plain":   {},
	}
	got := map[string]approval.Timing{w.Steps[0].Name: w.Steps[0].Timing}
	for _, r := range w.Rules {
		got[r.Name] = r.Timing
	}
	if !reflect.DeepEqual(got, wantOverrides) {
		t.Errorf("got overrides %+v; want %+v", got, wantOverrides)
	}

	// What the domain makes of them: the timing each reason runs on.
	wantEffective := map[string]approval.Timing{
		"on-call": {Timeout: 3 * time.Hour, RemindEvery: time.Hour, RemindBefore: 30 * time.Minute, EscalateAfter: 2 * time.Hour, EscalateTo: platform},
		"fast":    {Timeout: 90 * time.Minute, RemindEvery: 15 * time.Minute, RemindBefore: 30 * time.Minute, EscalateAfter: time.Hour, EscalateTo: alice},
		"plain":   wantWorkspace,
	}
	reasons := approval.Evaluate(w.Workspace, approval.Plan{}, nil, approval.Identity{ID: "carol"}, c.Directory())
	got = map[string]approval.Timing{}
	for _, r := range reasons {
		got[r.Name] = r.Timing
	}
	if !reflect.DeepEqual(got, wantEffective) {
		t.Errorf("got reason timings %+v; want %+v", got, wantEffective)
	}
}

func TestParseWebhook(t *testing.T) {
	const hook = `    notify:
      webhook:
        url: https://hooks.example.com/gatehouse
        secret_env: GATEHOUSE_TEST_WEBHOOK_SECRET
`
	want := &Notify{Webhook: &Webhook{URL: "https://hooks.example.com/gatehouse", Secret: "from-the-environment"}}
	var asked []string
	getenv := func(name string) string {
		asked = append(asked, name)
		return map[string]string{"GATEHOUSE_TEST_WEBHOOK_SECRET": "from-the-environment"}[name]
	}
	c, err := parse([]byte(ws(hook)), "", getenv)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if got := c.Workspaces[0].Notify; !reflect.DeepEqual(got, want) {
		t.Errorf("got notify %+v; want %+v", got, want)
	}
	if want := []string{"GATEHOUSE_TEST_WEBHOOK_SECRET"}; !reflect.DeepEqual(asked, want) {
		t.Errorf("looked up %q; want %q", asked, want)
	}

	for _, src := range []string{ws(""), ws("    notify: {}\n"), ws("    notify: {webhook: ~}\n")} {
		if got := mustParse(t, src).Workspaces[0].Notify; got != nil {
			t.Errorf("got notify %+v; want nil for\n%s", got, src)
		}
	}
}

func TestParseReadsTheEnvironment(t *testing.T) {
	t.Setenv("GATEHOUSE_CONFIG_TEST_SECRET", "set-by-the-test")
	src := ws("    notify: {webhook: {url: \"https://h.example\", secret_env: GATEHOUSE_CONFIG_TEST_SECRET}}\n")
	c, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := c.Workspaces[0].Notify.Webhook.Secret; got != "set-by-the-test" {
		t.Errorf("Parse: got secret %q; want the environment's", got)
	}
	path := filepath.Join(t.TempDir(), "gatehouse.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = Load(path); err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := c.Workspaces[0].Notify.Webhook.Secret; got != "set-by-the-test" {
		t.Errorf("Load: got secret %q; want the environment's", got)
	}

	t.Setenv("GATEHOUSE_CONFIG_TEST_SECRET", "")
	_, err = Parse([]byte(src))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("Parse with the variable empty: got error %v; want a *ValidationError", err)
	}
	checkProblems(t, verr.Problems, []Problem{{"workspaces[0].notify.webhook.secret_env", "environment variable GATEHOUSE_CONFIG_TEST_SECRET is not set"}})
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []Problem
	}{
		// The document.
		{"empty file", "", []Problem{{"", "expected a mapping"}}},
		{"only a comment", "# nothing here\n", []Problem{{"", "expected a mapping"}}},
		{"list at the root", "- users\n", []Problem{{"", "expected a mapping, got a list"}}},
		{"scalar at the root", "gatehouse\n", []Problem{{"", "expected a mapping"}}},
		{"syntax error", "users: [alice\n", []Problem{{"", "yaml:"}}},
		{"two documents", baseUsers + baseWorkspaces + "---\n" + baseWorkspaces, []Problem{{"", "single YAML document"}}},

		// Shape: unknown keys, duplicate keys, kinds.
		{"unknown top-level key", baseUsers + baseWorkspaces + "user: []\n", []Problem{{"user", "unknown field"}}},
		{"unknown user key", "users:\n  - {id: a, email: a@x, group: [x]}\n" + baseWorkspaces, []Problem{{"users[0].group", "unknown field"}}},
		{"unknown key at depth", rule("        when: {destroys_gtt: 0}\n        approvers: {users: [bob]}\n"),
			[]Problem{{"workspaces[0].rules[0].when.destroys_gtt", "unknown field"}}},
		{"duplicate key", "users:\n  - id: a\n    email: a@x\n    id: b\n" + baseWorkspaces, []Problem{{"users[0].id", "duplicate key (first given on line 2)"}}},
		{"duplicate top-level key", baseUsers + baseWorkspaces + baseWorkspaces, []Problem{{"workspaces", "duplicate key"}}},
		{"string for an int", rule("        approvers: {users: [bob]}\n        min_approvals: \"two\"\n"),
			[]Problem{{"workspaces[0].rules[0].min_approvals", `expected an integer, got "two"`}}},
		{"float for an int", rule("        approvers: {users: [bob]}\n        min_approvals: 1.5\n"),
			[]Problem{{"workspaces[0].rules[0].min_approvals", "expected an integer"}}},
		{"quoted number for an int", rule("        when: {adds_gt: \"3\"}\n        approvers: {users: [bob]}\n"),
			[]Problem{{"workspaces[0].rules[0].when.adds_gt", "expected an integer"}}},
		{"scalar for a list", "users:\n  - {id: a, email: a@x, groups: platform}\n" + baseWorkspaces,
			[]Problem{{"users[0].groups", `expected a list, got "platform"`}}},
		{"mapping for a list", "users: {alice: {email: a@x}}\n" + baseWorkspaces, []Problem{{"users", "expected a list, got a mapping"}}},
		{"list for a mapping", ws("    apply: [make]\n"), []Problem{{"workspaces[0].apply", "expected a mapping, got a list"}}},
		{"scalar for a struct", rule("        approvers: bob\n"), []Problem{{"workspaces[0].rules[0].approvers", "expected a mapping"}}},
		{"mapping for a string", "users:\n  - {id: {name: a}, email: a@x}\n" + baseWorkspaces, []Problem{{"users[0].id", "expected a string, got a mapping"}}},
		{"string for a bool", rule("        approvers: {users: [bob]}\n        allow_self_approval: \"yes\"\n"),
			[]Problem{{"workspaces[0].rules[0].allow_self_approval", "expected a boolean"}}},
		{"merge key", baseUsers + "defaults: &d {timeout: 1h}\nworkspaces:\n  - {<<: *d, name: ws}\n",
			[]Problem{{"defaults", "unknown field"}, {"workspaces[0].<<", "merge keys are not supported"}}},

		// Users.
		{"user id missing", "users:\n  - {email: a@x}\n" + baseWorkspaces, []Problem{{"users[0].id", "required"}}},
		{"user id malformed", "users:\n  - {id: Alice, email: a@x}\n" + baseWorkspaces, []Problem{{"users[0].id", "must match"}}},
		{"user id duplicate", "users:\n  - {id: a, email: a@x}\n  - {id: a, email: b@x}\n" + baseWorkspaces,
			[]Problem{{"users[1].id", `duplicate user id "a" (also users[0])`}}},
		{"email missing", "users:\n  - {id: a}\n" + baseWorkspaces, []Problem{{"users[0].email", "required"}}},
		{"email without @", "users:\n  - {id: a, email: alice}\n" + baseWorkspaces, []Problem{{"users[0].email", "not an email address"}}},
		{"same email same source", "users:\n  - {id: a, email: a@x}\n  - {id: b, email: A@x, source: sso}\n" + baseWorkspaces,
			[]Problem{{"users[1].email", "already used by users[0] with source sso"}}},
		{"source unknown", "users:\n  - {id: a, email: a@x, source: ldap}\n" + baseWorkspaces, []Problem{{"users[0].source", `unknown source "ldap"`}}},
		{"role unknown", "users:\n  - {id: a, email: a@x, roles: [approver, owner]}\n" + baseWorkspaces, []Problem{{"users[0].roles[1]", `unknown role "owner"`}}},
		{"viewer combined", "users:\n  - {id: a, email: a@x, roles: [viewer, approver]}\n" + baseWorkspaces,
			[]Problem{{"users[0].roles", "viewer cannot be combined with another role"}}},
		{"group empty", "users:\n  - {id: a, email: a@x, groups: [\"\"]}\n" + baseWorkspaces, []Problem{{"users[0].groups[0]", "must not be empty"}}},
		{"token and token_sha256", "users:\n  - {id: a, email: a@x, token: t, token_sha256: " + sha("t") + "}\n" + baseWorkspaces,
			[]Problem{{"users[0]", "only one of token and token_sha256"}}},
		{"token_sha256 not hex", "users:\n  - {id: a, email: a@x, token_sha256: " + strings.Repeat("g", 64) + "}\n" + baseWorkspaces,
			[]Problem{{"users[0].token_sha256", "64 hexadecimal characters"}}},
		{"token_sha256 too short", "users:\n  - {id: a, email: a@x, token_sha256: abc}\n" + baseWorkspaces,
			[]Problem{{"users[0].token_sha256", "64 hexadecimal characters"}}},
		{"plain tokens repeated", "users:\n  - {id: a, email: a@x, token: t}\n  - {id: b, email: b@x, token: t}\n" + baseWorkspaces,
			[]Problem{{"users[1].token", "same token as users[0]"}}},
		{"token repeated as digest", "users:\n  - {id: a, email: a@x, token: t}\n  - {id: b, email: b@x, token_sha256: " + strings.ToUpper(sha("t")) + "}\n" + baseWorkspaces,
			[]Problem{{"users[1].token_sha256", "same token as users[0]"}}},

		// Workspaces.
		{"workspaces missing", baseUsers, []Problem{{"workspaces", "at least one workspace is required"}}},
		{"workspaces empty", baseUsers + "workspaces: []\n", []Problem{{"workspaces", "at least one workspace is required"}}},
		{"workspace name missing", baseUsers + "workspaces:\n  - environment: prod\n", []Problem{{"workspaces[0].name", "required"}}},
		{"workspace name malformed", baseUsers + "workspaces:\n  - name: Prod Network\n", []Problem{{"workspaces[0].name", "must match"}}},
		{"workspace name with slash", baseUsers + "workspaces:\n  - name: prod/network\n", []Problem{{"workspaces[0].name", "must match"}}},
		{"workspace name duplicate", baseUsers + "workspaces:\n  - name: a\n  - name: b\n  - name: a\n",
			[]Problem{{"workspaces[2].name", `duplicate workspace name "a" (also workspaces[0])`}}},
		{"timeout not a duration", ws("    timeout: 4 hours\n"), []Problem{{"workspaces[0].timeout", "not a duration"}}},
		{"timeout without unit", ws("    timeout: 3600\n"), []Problem{{"workspaces[0].timeout", "not a duration"}}},
		{"timeout zero", ws("    timeout: 0s\n"), []Problem{{"workspaces[0].timeout", "must be positive"}}},
		{"timeout negative", ws("    timeout: -1h\n"), []Problem{{"workspaces[0].timeout", "must be positive"}}},
		{"on_timeout unknown", ws("    on_timeout: approve\n"), []Problem{{"workspaces[0].on_timeout", `unknown outcome "approve"`}}},
		{"tag empty", ws("    tags: [pci, \"\"]\n"), []Problem{{"workspaces[0].tags[1]", "must not be empty"}}},
		{"tag blank", ws("    tags: [\"  \"]\n"), []Problem{{"workspaces[0].tags[0]", "must not be empty"}}},
		{"tag duplicate", ws("    tags: [pci, network, pci]\n"), []Problem{{"workspaces[0].tags[2]", `duplicate tag "pci" (also workspaces[0].tags[0])`}}},
		{"tags not a list", ws("    tags: pci\n"), []Problem{{"workspaces[0].tags", `expected a list, got "pci"`}}},
		{"tag not a string", ws("    tags: [{name: pci}]\n"), []Problem{{"workspaces[0].tags[0]", "expected a string, got a mapping"}}},
		{"apply without command", ws("    apply: {dir: .}\n"), []Problem{{"workspaces[0].apply.command", "required"}}},
		{"apply with empty command", ws("    apply: {command: []}\n"), []Problem{{"workspaces[0].apply.command", "required"}}},
		{"apply with empty program", ws("    apply: {command: [\"\", x]}\n"), []Problem{{"workspaces[0].apply.command[0]", "must not be empty"}}},
		{"apply timeout zero", ws("    apply: {command: [x], timeout: 0s}\n"), []Problem{{"workspaces[0].apply.timeout", "must be positive"}}},
		{"apply timeout malformed", ws("    apply: {command: [x], timeout: soon}\n"), []Problem{{"workspaces[0].apply.timeout", "not a duration"}}},

		// Rules.
		{"rule name missing", ws("    rules:\n      - approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].name", "required"}}},
		{"rule name malformed", ws("    rules:\n      - {name: Needs Two, approvers: {users: [bob]}}\n"), []Problem{{"workspaces[0].rules[0].name", "must match"}}},
		{"rule name duplicate", ws("    rules:\n      - {name: r, approvers: {users: [bob]}}\n      - {name: r, approvers: {users: [alice]}}\n"),
			[]Problem{{"workspaces[0].rules[1].name", `duplicate rule name "r" (also workspaces[0].rules[0])`}}},
		{"stage unknown", rule("        stage: pre_plan\n        approvers: {users: [bob]}\n"),
			[]Problem{{"workspaces[0].rules[0].stage", `unknown stage "pre_plan" (want post_plan, pre_apply or post_apply)`}}},
		{"stage in another case", rule("        stage: PRE_APPLY\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].stage", `unknown stage "PRE_APPLY"`}}},
		{"rule name used by a step", ws("    steps:\n      - {name: x, stage: pre_apply, approvers: {users: [bob]}}\n    rules:\n      - {name: x, approvers: {users: [alice]}}\n"),
			[]Problem{{"workspaces[0].rules[0].name", `name already used by step "x" (workspaces[0].steps[0])`}}},
		{"rule name used by a step listed after the rules", ws("    rules:\n      - {name: x, approvers: {users: [alice]}}\n    steps:\n      - {name: x, stage: pre_apply, approvers: {users: [bob]}}\n"),
			[]Problem{{"workspaces[0].rules[0].name", `name already used by step "x" (workspaces[0].steps[0])`}}},
		{"adds_gt negative", rule("        when: {adds_gt: -1}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.adds_gt", "must be >= 0"}}},
		{"changes_gt negative", rule("        when: {changes_gt: -2}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.changes_gt", "must be >= 0"}}},
		{"destroys_gt negative", rule("        when: {destroys_gt: -1}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.destroys_gt", "must be >= 0"}}},
		{"replaces_gt negative", rule("        when: {replaces_gt: -1}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.replaces_gt", "must be >= 0, got -1"}}},
		{"resources_gt negative", rule("        when: {resources_gt: -5}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.resources_gt", "must be >= 0, got -5"}}},
		{"replaces_gt not an int", rule("        when: {replaces_gt: many}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.replaces_gt", `expected an integer, got "many"`}}},
		{"resources_gt a float", rule("        when: {resources_gt: 2.5}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.resources_gt", "expected an integer"}}},
		{"action unknown", rule("        when: {actions: [create, destroy]}\n        approvers: {users: [bob]}\n"),
			[]Problem{{"workspaces[0].rules[0].when.actions[1]", `unknown action "destroy" (want create, update, delete, replace, forget, import, move or invoke)`}}},
		{"action in another case", rule("        when: {actions: [Delete]}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.actions[0]", `unknown action "Delete"`}}},
		{"action empty", rule("        when: {actions: [\"\"]}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.actions[0]", "must not be empty"}}},
		{"actions empty", rule("        when: {actions: []}\n        approvers: {users: [bob]}\n"),
			[]Problem{{"workspaces[0].rules[0].when.actions", "must not be empty: leave actions out to match any action"}}},
		{"actions not a list", rule("        when: {actions: delete}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.actions", `expected a list, got "delete"`}}},
		{"resource type with a class", rule("        when: {resource_types: [\"aws_iam_*\", \"aws_[a-z]*\"]}\n        approvers: {users: [bob]}\n"),
			[]Problem{{"workspaces[0].rules[0].when.resource_types[1]", `"aws_[a-z]*": character classes and escapes are not supported: only * (any run of characters) and ? (one character) are special`}}},
		{"resource type with an escape", rule("        when: {resource_types: ['aws_\\*']}\n        approvers: {users: [bob]}\n"),
			[]Problem{{"workspaces[0].rules[0].when.resource_types[0]", "character classes and escapes are not supported"}}},
		{"resource type empty", rule("        when: {resource_types: [\" \"]}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.resource_types[0]", "must not be empty"}}},
		{"resource types empty", rule("        when: {resource_types: []}\n        approvers: {users: [bob]}\n"),
			[]Problem{{"workspaces[0].rules[0].when.resource_types", "must not be empty: leave resource_types out to match any resource type"}}},
		{"provider with a class", rule("        when: {providers: [\"registry.terraform.io/[a-z]*/aws\"]}\n        approvers: {users: [bob]}\n"),
			[]Problem{{"workspaces[0].rules[0].when.providers[0]", "character classes and escapes are not supported"}}},
		{"providers empty", rule("        when: {providers: []}\n        approvers: {users: [bob]}\n"),
			[]Problem{{"workspaces[0].rules[0].when.providers", "must not be empty: leave providers out to match any provider"}}},
		{"providers not a list", rule("        when: {providers: {aws: true}}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.providers", "expected a list, got a mapping"}}},
		{"condition tag empty", rule("        when: {tags: [pci, \"\"]}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.tags[1]", "must not be empty"}}},
		{"condition tags empty", rule("        when: {tags: []}\n        approvers: {users: [bob]}\n"),
			[]Problem{{"workspaces[0].rules[0].when.tags", "must not be empty: leave tags out to match any workspace"}}},
		{"monthly_cost_gt negative", rule("        when: {monthly_cost_gt: -0.5}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.monthly_cost_gt", "must be >= 0, got -0.5"}}},
		{"monthly_cost_gt not a number", rule("        when: {monthly_cost_gt: lots}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.monthly_cost_gt", `expected a number, got "lots"`}}},
		{"monthly_cost_gt quoted", rule("        when: {monthly_cost_gt: \"500\"}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.monthly_cost_gt", "expected a number"}}},
		{"monthly_cost_gt with a currency", rule("        when: {monthly_cost_gt: 500 USD}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.monthly_cost_gt", `expected a number, got "500 USD"`}}},
		{"monthly_cost_gt infinite", rule("        when: {monthly_cost_gt: .inf}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.monthly_cost_gt", "must be a finite number, got +Inf"}}},
		{"monthly_cost_delta_gt not a number", rule("        when: {monthly_cost_delta_gt: .nan}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.monthly_cost_delta_gt", "must be a finite number, got NaN"}}},
		{"monthly_cost_delta_gt a list", rule("        when: {monthly_cost_delta_gt: [1]}\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].rules[0].when.monthly_cost_delta_gt", "expected a number, got a list"}}},
		{"every condition problem", rule("        when: {adds_gt: -1, replaces_gt: -1, actions: [], resource_types: [\"a[b]\"], providers: [\"\"], tags: [], monthly_cost_delta_gt: -.inf, monthly_cost_gt: -1}\n        approvers: {users: [bob]}\n"),
			[]Problem{
				{"workspaces[0].rules[0].when.adds_gt", "must be >= 0"},
				{"workspaces[0].rules[0].when.replaces_gt", "must be >= 0"},
				{"workspaces[0].rules[0].when.actions", "must not be empty"},
				{"workspaces[0].rules[0].when.resource_types[0]", "character classes"},
				{"workspaces[0].rules[0].when.providers[0]", "must not be empty"},
				{"workspaces[0].rules[0].when.tags", "must not be empty"},
				{"workspaces[0].rules[0].when.monthly_cost_delta_gt", "must be a finite number"},
				{"workspaces[0].rules[0].when.monthly_cost_gt", "must be >= 0"},
			}},
		{"approvers missing", rule("        min_approvals: 1\n"), []Problem{{"workspaces[0].rules[0].approvers", "required"}}},
		{"approvers empty", rule("        approvers: {users: [], groups: []}\n"), []Problem{{"workspaces[0].rules[0].approvers", "required"}}},
		{"approver user dangling", rule("        approvers: {users: [bob, zed]}\n"), []Problem{{"workspaces[0].rules[0].approvers.users[1]", `unknown user "zed"`}}},
		{"approver group without members", rule("        approvers: {groups: [platform, secops]}\n"), []Problem{{"workspaces[0].rules[0].approvers.groups[1]", `no user is in group "secops"`}}},
		{"approver role viewer", rule("        approvers: {roles: [viewer]}\n"), []Problem{{"workspaces[0].rules[0].approvers.roles[0]", "viewers may not approve"}}},
		{"approver role unknown", rule("        approvers: {roles: [approver, owner]}\n"), []Problem{{"workspaces[0].rules[0].approvers.roles[1]", `unknown role "owner"`}}},
		{"min_approvals zero", rule("        approvers: {users: [bob]}\n        min_approvals: 0\n"), []Problem{{"workspaces[0].rules[0].min_approvals", "must be >= 1"}}},
		{"min_approvals negative", rule("        approvers: {users: [bob]}\n        min_approvals: -3\n"), []Problem{{"workspaces[0].rules[0].min_approvals", "must be >= 1"}}},

		// Automation users.
		{"automation admin", "users:\n  - {id: ci, email: ci@x, automation: true, roles: [approver, admin]}\n" + baseWorkspaces,
			[]Problem{{"users[0].roles[1]", "automation users may not be admins: bypass needs a person"}}},
		{"automation viewer", "users:\n  - {id: ci, email: ci@x, automation: true, roles: [viewer]}\n" + baseWorkspaces,
			[]Problem{{"users[0].roles[0]", "automation users may not be viewers"}}},
		{"automation viewer and admin", "users:\n  - {id: ci, email: ci@x, automation: true, roles: [viewer, admin]}\n" + baseWorkspaces,
			[]Problem{
				{"users[0].roles", "viewer cannot be combined"},
				{"users[0].roles[0]", "automation users may not be viewers"},
				{"users[0].roles[1]", "automation users may not be admins"},
			}},
		{"automation not a bool", "users:\n  - {id: ci, email: ci@x, automation: \"yes\"}\n" + baseWorkspaces,
			[]Problem{{"users[0].automation", "expected a boolean"}}},

		// Bypass.
		{"allow_bypass not a bool", ws("    allow_bypass: 1\n"), []Problem{{"workspaces[0].allow_bypass", "expected a boolean"}}},

		// Steps.
		{"steps not a list", ws("    steps: {name: s}\n"), []Problem{{"workspaces[0].steps", "expected a list"}}},
		{"step with conditions", step("        stage: pre_apply\n        when: {destroys_gt: 0}\n        approvers: {users: [bob]}\n"),
			[]Problem{{"workspaces[0].steps[0].when", "unknown field"}}},
		{"step name missing", ws("    steps:\n      - {stage: pre_apply, approvers: {users: [bob]}}\n"), []Problem{{"workspaces[0].steps[0].name", "required"}}},
		{"step name malformed", ws("    steps:\n      - {name: On Call, stage: pre_apply, approvers: {users: [bob]}}\n"), []Problem{{"workspaces[0].steps[0].name", "must match"}}},
		{"step name duplicate", ws("    steps:\n      - {name: s, stage: pre_apply, approvers: {users: [bob]}}\n      - {name: s, stage: post_apply, approvers: {users: [alice]}}\n"),
			[]Problem{{"workspaces[0].steps[1].name", `duplicate step name "s" (also workspaces[0].steps[0])`}}},
		{"step stage missing", step("        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].steps[0].stage", "required"}}},
		{"step stage null", step("        stage: ~\n        approvers: {users: [bob]}\n"), []Problem{{"workspaces[0].steps[0].stage", "required"}}},
		{"step stage unknown", step("        stage: pre_plan\n        approvers: {users: [bob]}\n"),
			[]Problem{{"workspaces[0].steps[0].stage", `unknown stage "pre_plan" (want post_plan, pre_apply or post_apply)`}}},
		{"step approvers missing", step("        stage: pre_apply\n"), []Problem{{"workspaces[0].steps[0].approvers", "required: at least one of users, groups or roles"}}},
		{"step approvers empty", step("        stage: pre_apply\n        approvers: {roles: []}\n"), []Problem{{"workspaces[0].steps[0].approvers", "required"}}},
		{"step approver user dangling", step("        stage: pre_apply\n        approvers: {users: [zed]}\n"), []Problem{{"workspaces[0].steps[0].approvers.users[0]", `unknown user "zed"`}}},
		{"step approver group without members", step("        stage: pre_apply\n        approvers: {groups: [secops]}\n"),
			[]Problem{{"workspaces[0].steps[0].approvers.groups[0]", `no user is in group "secops"`}}},
		{"step approver role viewer", step("        stage: pre_apply\n        approvers: {roles: [approver, viewer]}\n"),
			[]Problem{{"workspaces[0].steps[0].approvers.roles[1]", "viewers may not approve"}}},
		{"step approver role unknown", step("        stage: pre_apply\n        approvers: {roles: [owner]}\n"),
			[]Problem{{"workspaces[0].steps[0].approvers.roles[0]", `unknown role "owner"`}}},
		{"step min_approvals zero", step("        stage: pre_apply\n        approvers: {users: [bob]}\n        min_approvals: 0\n"),
			[]Problem{{"workspaces[0].steps[0].min_approvals", "must be >= 1, got 0"}}},
		{"step min_approvals not an int", step("        stage: pre_apply\n        approvers: {users: [bob]}\n        min_approvals: one\n"),
			[]Problem{{"workspaces[0].steps[0].min_approvals", "expected an integer"}}},
		{"step every problem", ws("    steps:\n      - {name: S, stage: later, approvers: {users: [zed], roles: [viewer]}, min_approvals: -1}\n"),
			[]Problem{
				{"workspaces[0].steps[0].name", "must match"},
				{"workspaces[0].steps[0].stage", `unknown stage "later"`},
				{"workspaces[0].steps[0].approvers.users[0]", `unknown user "zed"`},
				{"workspaces[0].steps[0].approvers.roles[0]", "viewers may not approve"},
				{"workspaces[0].steps[0].min_approvals", "must be >= 1"},
			}},

		// Timing of a workspace.
		{"remind_every not a duration", ws("    remind_every: hourly\n"), []Problem{{"workspaces[0].remind_every", `"hourly" is not a duration`}}},
		{"remind_every not a string", ws("    remind_every: {every: 1h}\n"), []Problem{{"workspaces[0].remind_every", "expected a string"}}},
		{"remind_before zero", ws("    remind_before: 0s\n"), []Problem{{"workspaces[0].remind_before", "must be positive, got 0s"}}},
		{"escalate_after negative", ws("    escalate_after: -1h\n    escalate_to: {users: [bob]}\n"),
			[]Problem{{"workspaces[0].escalate_after", "must be positive, got -1h"}}},
		{"escalate_after without escalate_to", ws("    escalate_after: 1h\n"),
			[]Problem{{"workspaces[0].escalate_to", "required with escalate_after: whom to escalate to"}}},
		{"escalate_after with a null escalate_to", ws("    escalate_after: 1h\n    escalate_to: ~\n"),
			[]Problem{{"workspaces[0].escalate_to", "required with escalate_after"}}},
		{"escalate_to without escalate_after", ws("    escalate_to: {users: [bob]}\n"),
			[]Problem{{"workspaces[0].escalate_after", "required with escalate_to: when to escalate"}}},
		{"escalate_to not a mapping", ws("    escalate_after: 1h\n    escalate_to: [bob]\n"),
			[]Problem{{"workspaces[0].escalate_to", "expected a mapping, got a list"}}},
		{"escalate_to unknown key", ws("    escalate_after: 1h\n    escalate_to: {user: [bob]}\n"),
			[]Problem{{"workspaces[0].escalate_to.user", "unknown field"}}},
		{"escalate_to empty", ws("    escalate_after: 1h\n    escalate_to: {users: []}\n"),
			[]Problem{{"workspaces[0].escalate_to", "required: at least one of users, groups or roles"}}},
		{"escalate_to user dangling", ws("    escalate_after: 1h\n    escalate_to: {users: [bob, zed]}\n"),
			[]Problem{{"workspaces[0].escalate_to.users[1]", `unknown user "zed"`}}},
		{"escalate_to group without members", ws("    escalate_after: 1h\n    escalate_to: {groups: [sre]}\n"),
			[]Problem{{"workspaces[0].escalate_to.groups[0]", `no user is in group "sre"`}}},
		{"escalate_to role viewer", ws("    escalate_after: 1h\n    escalate_to: {roles: [admin, viewer]}\n"),
			[]Problem{{"workspaces[0].escalate_to.roles[1]", "viewers may not approve"}}},
		{"escalate_to role unknown", ws("    escalate_after: 1h\n    escalate_to: {roles: [owner]}\n"),
			[]Problem{{"workspaces[0].escalate_to.roles[0]", `unknown role "owner"`}}},
		{"remind_before not before the default timeout", ws("    remind_before: 5h\n"),
			[]Problem{{"workspaces[0].remind_before", "remind_before 5h is not before the 4h timeout: the reminder could never be sent"}}},
		{"remind_every not before the timeout", ws("    timeout: 1h\n    remind_every: 60m\n"),
			[]Problem{{"workspaces[0].remind_every", "remind_every 1h is not before the 1h timeout: no reminder could ever be sent"}}},
		{"escalate_after not before the timeout", ws("    timeout: 2h\n    escalate_after: 150m\n    escalate_to: {users: [bob]}\n"),
			[]Problem{{"workspaces[0].escalate_after", "escalate_after 2h30m is not before the 2h timeout: the reason would time out before it escalates"}}},
		{"every timing problem of a workspace", ws("    timeout: 30m\n    remind_every: 1h\n    remind_before: 2h\n    escalate_after: 3h\n"),
			[]Problem{
				{"workspaces[0].escalate_to", "required with escalate_after"},
				{"workspaces[0].remind_every", "remind_every 1h is not before the 30m timeout"},
				{"workspaces[0].remind_before", "remind_before 2h is not before the 30m timeout"},
				{"workspaces[0].escalate_after", "escalate_after 3h is not before the 30m timeout"},
			}},
		{"invalid timeout is not compared", ws("    timeout: forever\n    remind_before: 5h\n"),
			[]Problem{{"workspaces[0].timeout", "not a duration"}}},

		// Timing of a rule or step.
		{"rule timeout not a duration", rule("        approvers: {users: [bob]}\n        timeout: soon\n"),
			[]Problem{{"workspaces[0].rules[0].timeout", `"soon" is not a duration`}}},
		{"rule remind_every zero", rule("        approvers: {users: [bob]}\n        remind_every: 0m\n"),
			[]Problem{{"workspaces[0].rules[0].remind_every", "must be positive"}}},
		{"rule escalate_after with nothing to escalate to", rule("        approvers: {users: [bob]}\n        escalate_after: 1h\n"),
			[]Problem{{"workspaces[0].rules[0].escalate_to", "required with escalate_after: the workspace has no escalate_to to inherit"}}},
		{"rule escalate_to with no escalate_after", rule("        approvers: {users: [bob]}\n        escalate_to: {users: [alice]}\n"),
			[]Problem{{"workspaces[0].rules[0].escalate_after", "required with escalate_to: the workspace has no escalate_after to inherit"}}},
		{"rule escalate_to dangling", rule("        approvers: {users: [bob]}\n        escalate_after: 1h\n        escalate_to: {users: [zed], groups: [sre], roles: [viewer]}\n"),
			[]Problem{
				{"workspaces[0].rules[0].escalate_to.users[0]", `unknown user "zed"`},
				{"workspaces[0].rules[0].escalate_to.groups[0]", `no user is in group "sre"`},
				{"workspaces[0].rules[0].escalate_to.roles[0]", "viewers may not approve"},
			}},
		{"rule remind_before not before the inherited timeout", ws("    timeout: 2h\n    rules:\n      - {name: r, approvers: {users: [bob]}, remind_before: 3h}\n"),
			[]Problem{{"workspaces[0].rules[0].remind_before", "remind_before 3h is not before the 2h timeout: the reminder could never be sent"}}},
		{"rule escalate_after not before its own timeout", ws("    escalate_to: {users: [alice]}\n    escalate_after: 1h\n    rules:\n      - {name: r, approvers: {users: [bob]}, timeout: 1h, escalate_after: 90m}\n"),
			[]Problem{{"workspaces[0].rules[0].escalate_after", "escalate_after 1h30m is not before the 1h timeout"}}},
		{"rule timeout not after the inherited remind_every", ws("    remind_every: 1h\n    rules:\n      - {name: r, approvers: {users: [bob]}, timeout: 30m}\n"),
			[]Problem{{"workspaces[0].rules[0].timeout", "the 30m timeout is not after remind_every 1h (inherited from the workspace): no reminder could ever be sent"}}},
		{"rule timeout not after the inherited escalate_after", ws("    escalate_after: 2h\n    escalate_to: {users: [alice]}\n    rules:\n      - {name: r, approvers: {users: [bob]}, timeout: 2h}\n"),
			[]Problem{{"workspaces[0].rules[0].timeout", "the 2h timeout is not after escalate_after 2h (inherited from the workspace): the reason would time out before it escalates"}}},
		{"a workspace conflict is reported once, at the workspace", ws("    remind_before: 5h\n    rules:\n      - {name: r, approvers: {users: [bob]}}\n      - {name: q, approvers: {users: [bob]}, remind_every: 1h}\n"),
			[]Problem{{"workspaces[0].remind_before", "remind_before 5h is not before the 4h timeout"}}},
		{"a rule fixing a workspace conflict for itself", ws("    remind_before: 5h\n    rules:\n      - {name: r, approvers: {users: [bob]}, timeout: 6h}\n"),
			[]Problem{{"workspaces[0].remind_before", "remind_before 5h is not before the 4h timeout"}}},
		{"rule with an invalid timeout is not compared", ws("    remind_every: 1h\n    rules:\n      - {name: r, approvers: {users: [bob]}, timeout: 1 hour, remind_before: 2h}\n"),
			[]Problem{{"workspaces[0].rules[0].timeout", "not a duration"}}},
		{"rule inheriting an invalid timeout is not compared", ws("    timeout: 4 hours\n    rules:\n      - {name: r, approvers: {users: [bob]}, remind_before: 5h}\n"),
			[]Problem{{"workspaces[0].timeout", "not a duration"}}},
		{"step escalate_after with nothing to escalate to", step("        stage: pre_apply\n        approvers: {users: [bob]}\n        escalate_after: 1h\n"),
			[]Problem{{"workspaces[0].steps[0].escalate_to", "required with escalate_after: the workspace has no escalate_to to inherit"}}},
		{"step escalate_to role viewer", ws("    escalate_after: 1h\n    escalate_to: {users: [alice]}\n    steps:\n      - {name: s, stage: pre_apply, approvers: {users: [bob]}, escalate_to: {roles: [viewer]}}\n"),
			[]Problem{{"workspaces[0].steps[0].escalate_to.roles[0]", "viewers may not approve"}}},
		{"step remind_every not before its timeout", step("        stage: post_apply\n        approvers: {users: [bob]}\n        timeout: 10m\n        remind_every: 10m\n"),
			[]Problem{{"workspaces[0].steps[0].remind_every", "remind_every 10m is not before the 10m timeout"}}},
		{"step with an unknown timing key", step("        stage: post_apply\n        approvers: {users: [bob]}\n        remind_after: 10m\n"),
			[]Problem{{"workspaces[0].steps[0].remind_after", "unknown field"}}},

		// Notifications.
		{"notify not a mapping", ws("    notify: [webhook]\n"), []Problem{{"workspaces[0].notify", "expected a mapping, got a list"}}},
		{"notify unknown channel", ws("    notify: {pager: {channel: ops}}\n"), []Problem{{"workspaces[0].notify.pager", "unknown field"}}},
		{"slack notify without the slack block", ws("    notify: {slack: {channel: ops}}\n"), []Problem{{"workspaces[0].notify.slack", "needs the top-level slack block"}}},
		{"webhook unknown key", ws("    notify: {webhook: {url: https://h.example, secret: s, secrets: t}}\n"),
			[]Problem{{"workspaces[0].notify.webhook.secrets", "unknown field"}}},
		{"webhook url missing", ws("    notify: {webhook: {secret: s}}\n"), []Problem{{"workspaces[0].notify.webhook.url", "required"}}},
		{"webhook url unparsable", ws("    notify: {webhook: {url: \"http://[::1\", secret: s}}\n"),
			[]Problem{{"workspaces[0].notify.webhook.url", `"http://[::1" is not a URL`}}},
		{"webhook url relative", ws("    notify: {webhook: {url: hooks.example.com/gatehouse, secret: s}}\n"),
			[]Problem{{"workspaces[0].notify.webhook.url", "is not an absolute http or https URL"}}},
		{"webhook url of another scheme", ws("    notify: {webhook: {url: \"ftp://hooks.example.com/x\", secret: s}}\n"),
			[]Problem{{"workspaces[0].notify.webhook.url", `"ftp://hooks.example.com/x" is not an absolute http or https URL`}}},
		{"webhook url without host", ws("    notify: {webhook: {url: \"https:///gatehouse\", secret: s}}\n"),
			[]Problem{{"workspaces[0].notify.webhook.url", "names no host"}}},
		{"webhook url with only a port", ws("    notify: {webhook: {url: \"https://:8443/gatehouse\", secret: s}}\n"),
			[]Problem{{"workspaces[0].notify.webhook.url", "names no host"}}},
		{"webhook secret and secret_env", ws("    notify: {webhook: {url: https://h.example, secret: s, secret_env: GATEHOUSE_TEST_WEBHOOK_SECRET}}\n"),
			[]Problem{{"workspaces[0].notify.webhook", "only one of secret and secret_env may be given"}}},
		{"webhook without a secret", ws("    notify: {webhook: {url: https://h.example}}\n"),
			[]Problem{{"workspaces[0].notify.webhook", "required: secret_env"}}},
		{"webhook secret_env unset", ws("    notify: {webhook: {url: https://h.example, secret_env: GATEHOUSE_TEST_UNSET}}\n"),
			[]Problem{{"workspaces[0].notify.webhook.secret_env", "environment variable GATEHOUSE_TEST_UNSET is not set"}}},
		{"webhook secret_env empty", ws("    notify: {webhook: {url: https://h.example, secret_env: GATEHOUSE_TEST_EMPTY}}\n"),
			[]Problem{{"workspaces[0].notify.webhook.secret_env", "environment variable GATEHOUSE_TEST_EMPTY is not set (or is empty)"}}},
		{"webhook secret_env not a name", ws("    notify: {webhook: {url: https://h.example, secret_env: $SECRET}}\n"),
			[]Problem{{"workspaces[0].notify.webhook.secret_env", `"$SECRET" is not an environment variable name`}}},
		{"every webhook problem", ws("    notify:\n      webhook: {url: \"mailto:ops@example.com\"}\n"),
			[]Problem{
				{"workspaces[0].notify.webhook.url", "is not an absolute http or https URL"},
				{"workspaces[0].notify.webhook", "required: secret_env"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, problemsOf(t, tt.src), tt.want)
		})
	}
}

func TestParseAcceptsEdgeCases(t *testing.T) {
	tests := []struct {
		name string
		src  string
	}{
		{"same email across sso and local", "users:\n  - {id: a, email: a@x, source: sso}\n  - {id: b, email: a@x, source: local}\n" + baseWorkspaces},
		{"user without token", "users:\n  - {id: a, email: a@x}\n" + baseWorkspaces},
		{"email-like user id", "users:\n  - {id: a.b@example.com, email: a.b@example.com}\n" + baseWorkspaces},
		{"numeric-looking user id", "users:\n  - {id: \"007\", email: bond@x}\n  - {id: 42, email: h2g2@x}\n" + baseWorkspaces},
		{"no users", baseWorkspaces},
		{"same rule name in two workspaces", baseUsers + "workspaces:\n  - {name: a, rules: [{name: r, approvers: {users: [bob]}}]}\n  - {name: b, rules: [{name: r, approvers: {users: [bob]}}]}\n"},
		{"null values mean absent", ws("    apply: ~\n    timeout:\n    rules:\n      - name: r\n        approvers: {roles: [approver]}\n        min_approvals: null\n")},
		{"anchors and aliases", baseUsers + "workspaces:\n  - name: a\n    apply: &apply {command: [make, apply]}\n  - name: b\n    apply: *apply\n"},
		{"rule at pre_apply", rule("        stage: pre_apply\n        approvers: {users: [bob]}\n")},
		{"rule at post_apply", rule("        stage: post_apply\n        approvers: {users: [bob]}\n")},
		{"a step at every stage", ws("    steps:\n      - {name: a, stage: post_plan, approvers: {users: [bob]}}\n      - {name: b, stage: pre_apply, approvers: {groups: [platform]}}\n      - {name: c, stage: post_apply, approvers: {roles: [approver]}}\n")},
		{"same step name in two workspaces", baseUsers + "workspaces:\n  - {name: a, steps: [{name: s, stage: pre_apply, approvers: {users: [bob]}}]}\n  - {name: b, steps: [{name: s, stage: pre_apply, approvers: {users: [bob]}}]}\n"},
		{"step and rule of one name in two workspaces", baseUsers + "workspaces:\n  - {name: a, steps: [{name: x, stage: pre_apply, approvers: {users: [bob]}}]}\n  - {name: b, rules: [{name: x, approvers: {users: [bob]}}]}\n"},
		{"automation approver", "users:\n  - {id: ci, email: ci@x, automation: true, groups: [platform], roles: [approver]}\n" + baseWorkspaces},
		{"admin who is not automation", "users:\n  - {id: ci, email: ci@x, automation: false, roles: [admin]}\n" + baseWorkspaces},
		{"conditions of zero", rule("        when: {adds_gt: 0, changes_gt: 0, destroys_gt: 0, replaces_gt: 0, resources_gt: 0, monthly_cost_gt: 0, monthly_cost_delta_gt: 0, environment: prod}\n        approvers: {roles: [admin]}\n")},
		{"a negative cost delta", rule("        when: {monthly_cost_delta_gt: -100}\n        approvers: {roles: [admin]}\n")},
		{"null conditions mean absent", rule("        when: {actions: ~, resource_types: null, tags: null, providers: ~, monthly_cost_gt: ~}\n        approvers: {roles: [admin]}\n")},
		{"same tag in two workspaces", baseUsers + "workspaces:\n  - {name: a, tags: [pci]}\n  - {name: b, tags: [pci]}\n"},
		{"no tags", ws("    tags: []\n")},
		{"null timing values mean absent", ws("    remind_every: ~\n    remind_before:\n    escalate_after: null\n    escalate_to: ~\n")},
		{"rule escalate_after inheriting escalate_to", ws("    escalate_after: 2h\n    escalate_to: {users: [alice]}\n    rules:\n      - {name: r, approvers: {users: [bob]}, escalate_after: 30m}\n")},
		{"step escalate_to inheriting escalate_after", ws("    escalate_after: 2h\n    escalate_to: {users: [alice]}\n    steps:\n      - {name: s, stage: pre_apply, approvers: {users: [bob]}, escalate_to: {roles: [admin]}}\n")},
		{"rule timing within an inherited timeout", ws("    timeout: 8h\n    rules:\n      - {name: r, approvers: {users: [bob]}, remind_every: 7h, remind_before: 7h59m}\n")},
		{"rule timeout longer than the workspace's", ws("    remind_before: 5h\n    timeout: 6h\n    rules:\n      - {name: r, approvers: {users: [bob]}, timeout: 12h}\n")},
		{"escalation to an admin", "users:\n  - {id: erin, email: erin@x, roles: [admin]}\n  - {id: bob, email: bob@x, roles: [approver]}\n" +
			"workspaces:\n  - {name: ws, escalate_after: 1h, escalate_to: {users: [erin]}, rules: [{name: r, approvers: {users: [bob]}}]}\n"},
		{"webhook over http with a port", ws("    notify: {webhook: {url: \"http://localhost:8080/hook?x=1\", secret: s}}\n")},
		{"webhook url scheme in capitals", ws("    notify: {webhook: {url: \"HTTPS://hooks.example.com\", secret: s}}\n")},
		{"empty notify", ws("    notify: {}\n")},
		{"null webhook", ws("    notify: {webhook: ~}\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustParse(t, tt.src)
		})
	}
}

func TestParseReportsAllProblems(t *testing.T) {
	src := `users:
  - {id: alice, email: alice@example.com, groups: [platform], roles: [approver], token: t}
  - {id: Bob, email: bob, roles: [viewer, admin], token: t}
  - {id: ci, email: ci@example.com, automation: true, roles: [admin]}
workspaces:
  - name: prod
    timeout: forever
    rules:
      - name: r1
        approvers: {users: [zed], roles: [viewer]}
        min_approvals: 0
      - name: s1
        stage: pre_apply
        approvers: {users: [alice]}
    steps:
      - name: s1
        approvers: {groups: [ops]}
  - name: prod
    on_timeout: shrug
`
	checkProblems(t, problemsOf(t, src), []Problem{
		{"users[1].id", "must match"},
		{"users[1].email", "not an email address"},
		{"users[1].roles", "viewer cannot be combined"},
		{"users[1].token", "same token as users[0]"},
		{"users[2].roles[0]", "automation users may not be admins"},
		{"workspaces[0].timeout", "not a duration"},
		{"workspaces[0].steps[0].stage", "required"},
		{"workspaces[0].steps[0].approvers.groups[0]", `no user is in group "ops"`},
		{"workspaces[0].rules[0].approvers.users[0]", `unknown user "zed"`},
		{"workspaces[0].rules[0].approvers.roles[0]", "viewers may not approve"},
		{"workspaces[0].rules[0].min_approvals", "must be >= 1"},
		{"workspaces[0].rules[1].name", `name already used by step "s1"`},
		{"workspaces[1].name", "duplicate workspace name"},
		{"workspaces[1].on_timeout", "unknown outcome"},
	})
}

func TestParseReportsAllShapeProblems(t *testing.T) {
	src := `users:
  - {id: alice, email: alice@example.com, groups: platform, role: admin}
workspaces:
  - name: prod
    rules:
      - name: r
        when: {destroys_gtt: 1}
        approvers: {users: [alice]}
        min_approvals: "two"
`
	checkProblems(t, problemsOf(t, src), []Problem{
		{"users[0].groups", "expected a list"},
		{"users[0].role", "unknown field"},
		{"workspaces[0].rules[0].when.destroys_gtt", "unknown field"},
		{"workspaces[0].rules[0].min_approvals", "expected an integer"},
	})
}

func TestValidationErrorString(t *testing.T) {
	err := &ValidationError{Problems: []Problem{
		{Path: "", Message: "expected a mapping"},
		{Path: "users[0].id", Message: "required"},
		{Path: "workspaces", Message: "at least one workspace is required"},
	}}
	want := "config: expected a mapping\nusers[0].id: required\nworkspaces: at least one workspace is required"
	if got := err.Error(); got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestLoad(t *testing.T) {
	abs, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load("testdata/full.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	w, _ := c.Workspace("prod-network")
	if got, want := w.Apply.Dir, filepath.Join(abs, "scripts"); got != want {
		t.Errorf("got apply dir %q; want %q (relative to the config file)", got, want)
	}

	t.Run("dir defaults to the file's directory; absolute dirs are kept", func(t *testing.T) {
		dir := t.TempDir()
		src := baseUsers + "workspaces:\n  - {name: a, apply: {command: [x]}}\n  - {name: b, apply: {command: [x], dir: /opt/tf}}\n  - {name: c, apply: {command: [x], dir: ../up}}\n"
		path := filepath.Join(dir, "gatehouse.yaml")
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		for i, want := range []string{dir, "/opt/tf", filepath.Join(filepath.Dir(dir), "up")} {
			if got := c.Workspaces[i].Apply.Dir; got != want {
				t.Errorf("workspace %s: got apply dir %q; want %q", c.Workspaces[i].Name, got, want)
			}
		}
	})

	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing.yaml")
		_, err := Load(path)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("got error %v; want one wrapping fs.ErrNotExist", err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "load config "+path+": ") {
			t.Errorf("got error %q; want it prefixed with %q", err, "load config "+path+": ")
		}
	})

	t.Run("invalid file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bad.yaml")
		if err := os.WriteFile(path, []byte(baseUsers), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		var verr *ValidationError
		if !errors.As(err, &verr) {
			t.Fatalf("got error %T %v; want one wrapping *ValidationError", err, err)
		}
		checkProblems(t, verr.Problems, []Problem{{"workspaces", "at least one workspace"}})
		if want := "load config " + path + ": workspaces: at least one workspace is required"; err.Error() != want {
			t.Errorf("got error %q; want %q", err, want)
		}
	})
}

func TestAuthenticate(t *testing.T) {
	c := mustParse(t, readFile(t, "testdata/full.yaml"))
	tests := []struct {
		name   string
		token  string
		wantID approval.UserID // "" means no match
	}{
		{"plain token", "dev-alice", "alice"},
		{"token given as token_sha256", "secret-bob", "bob"},
		{"wrong token", "dev-bob", ""},
		{"empty token", "", ""},
		{"token with extra whitespace", "dev-alice ", ""},
		{"the digest itself is not a token", sha("secret-bob"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ok := c.Authenticate(tt.token)
			if ok != (tt.wantID != "") || u.ID != tt.wantID {
				t.Errorf("Authenticate(%q) = %q, %v; want %q, %v", tt.token, u.ID, ok, tt.wantID, tt.wantID != "")
			}
		})
	}
}

func TestLookups(t *testing.T) {
	c := mustParse(t, readFile(t, "testdata/full.yaml"))

	if w, ok := c.Workspace("staging"); !ok || w.Name != "staging" {
		t.Errorf("Workspace(staging) = %q, %v; want staging, true", w.Name, ok)
	}
	if w, ok := c.Workspace("nope"); ok {
		t.Errorf("Workspace(nope) = %q, true; want false", w.Name)
	}
	if u, ok := c.User("bob"); !ok || u.Email != "bob@example.com" {
		t.Errorf("User(bob) = %q, %v; want bob@example.com, true", u.Email, ok)
	}
	if u, ok := c.User("zed"); ok {
		t.Errorf("User(zed) = %q, true; want false", u.ID)
	}

	dir := c.Directory()
	var ids []approval.UserID
	for _, id := range dir {
		ids = append(ids, id.ID)
	}
	if want := []approval.UserID{"alice", "bob", "carol", "ci-bot"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("got directory %v; want %v", ids, want)
	}
	if !reflect.DeepEqual(dir[1], c.Users[1].Identity) {
		t.Errorf("got directory entry %+v; want %+v", dir[1], c.Users[1].Identity)
	}
	if !dir[3].Automation {
		t.Errorf("got directory entry %+v; want ci-bot marked as automation", dir[3])
	}
	// The directory is handed to other packages: changing it must not change
	// the configuration.
	dir[0].Groups[0] = "changed"
	if got := c.Users[0].Groups[0]; got != "platform" {
		t.Errorf("after changing the directory, got user group %q; want %q", got, "platform")
	}
}

func TestVersion(t *testing.T) {
	full := readFile(t, "testdata/full.yaml")
	base := mustParse(t, full).Version

	t.Run("same semantics, other layout", func(t *testing.T) {
		if got := mustParse(t, readFile(t, "testdata/full-reformatted.yaml")).Version; got != base {
			t.Errorf("got version %s for the reformatted config; want %s", got, base)
		}
	})
	t.Run("webhook secret inline and from the environment", func(t *testing.T) {
		src := strings.Replace(full, "secret: dev-only-secret", "secret_env: GATEHOUSE_TEST_WEBHOOK_SECRET", 1)
		if got := mustParse(t, src).Version; got != base {
			t.Errorf("got version %s with the secret from the environment; want %s", got, base)
		}
	})
	t.Run("plain token and its digest", func(t *testing.T) {
		src := strings.Replace(full, "token: dev-alice", "token_sha256: "+sha("dev-alice"), 1)
		if got := mustParse(t, src).Version; got != base {
			t.Errorf("got version %s with alice's token as a digest; want %s", got, base)
		}
	})

	changes := []struct {
		name, old, new string
	}{
		{"workspace timeout", "timeout: 2h", "timeout: 3h"},
		{"on_timeout", "on_timeout: cancel", "on_timeout: reject"},
		{"min_approvals", "min_approvals: 2", "min_approvals: 1"},
		{"condition", "destroys_gt: 0", "destroys_gt: 1"},
		{"condition added", "when: {adds_gt: 5, changes_gt: 0}", "when: {adds_gt: 5, changes_gt: 0, destroys_gt: 0}"},
		{"self-approval", "        min_approvals: 2\n        allow_self_approval: true", "        min_approvals: 2\n        allow_self_approval: false"},
		{"approvers", "          users: [bob]", "          users: [alice]"},
		{"group membership", "groups: [platform, security]", "groups: [platform]"},
		{"role", "roles: [approver, admin]", "roles: [approver]"},
		{"source", "source: local", "source: sso"},
		{"email", "email: carol@example.com", "email: carol@example.org"},
		{"token", "token: dev-alice", "token: dev-alice2"},
		{"apply command", `["./apply.sh", "--yes"]`, `["./apply.sh"]`},
		{"apply dir", "dir: scripts", "dir: other"},
		{"apply timeout", "timeout: 10m", "timeout: 11m"},
		{"environment", "environment: production\n    tags", "environment: prod\n    tags"},
		{"rule name", "name: adds", "name: adds-many"},
		{"workspace added", "  - name: staging\n", "  - name: staging\n  - name: dev\n"},
		{"automation", "automation: true", "automation: false"},
		{"allow_bypass", "allow_bypass: true", "allow_bypass: false"},
		{"step added", "    steps:\n", "    steps:\n      - {name: on-call, stage: pre_apply, approvers: {users: [bob]}}\n"},
		{"step stage", "stage: post_apply", "stage: pre_apply"},
		{"step name", "name: security-signoff", "name: security-review"},
		{"step self-approval", "        min_approvals: 1\n        allow_self_approval: true", "        min_approvals: 1\n        allow_self_approval: false"},
		{"rule stage", "stage: post_plan", "stage: pre_apply"},
		{"remind_every", "remind_every: 30m", "remind_every: 20m"},
		{"remind_before", "remind_before: 15m", "remind_before: 10m"},
		{"escalate_after", "escalate_after: 1h", "escalate_after: 70m"},
		{"escalate_to", "escalate_to:\n      users: [bob]", "escalate_to:\n      users: [alice]"},
		{"rule timeout override", "timeout: 90m", "timeout: 100m"},
		{"rule remind_every override", "remind_every: 20m", "remind_every: 25m"},
		{"rule escalate_after override", "escalate_after: 45m", "escalate_after: 50m"},
		{"rule remind_before override added", "    rules:\n      - name: destroys-need-two\n", "    rules:\n      - name: destroys-need-two\n        remind_before: 5m\n"},
		{"step escalate_to override", "escalate_to: {groups: [security]}", "escalate_to: {groups: [platform]}"},
		{"webhook url", "url: https://hooks.example.com/gatehouse", "url: https://hooks.example.com/gatehouse2"},
		{"webhook secret", "secret: dev-only-secret", "secret: dev-only-secret2"},
		{"webhook removed", "    notify:\n      webhook:\n        url: https://hooks.example.com/gatehouse\n        secret: dev-only-secret\n", ""},
		{"new condition key added", "when: {adds_gt: 5, changes_gt: 0}", "when: {adds_gt: 5, changes_gt: 0, providers: [\"registry.terraform.io/hashicorp/aws\"]}"},
		{"replaces_gt", "replaces_gt: 1", "replaces_gt: 2"},
		{"resources_gt", "resources_gt: 10", "resources_gt: 11"},
		{"actions", "actions: [delete, replace]", "actions: [delete]"},
		{"resource_types", `"aws_*", "google_?ompute_*"`, `"aws_*"`},
		{"providers", `"registry.terraform.io/hashicorp/*"`, `"registry.terraform.io/*"`},
		{"condition tags", "tags: [pci]", "tags: [pci, sox]"},
		{"monthly_cost_delta_gt", "monthly_cost_delta_gt: -99.5", "monthly_cost_delta_gt: -99.4"},
		{"monthly_cost_gt", "monthly_cost_gt: 1000", "monthly_cost_gt: 1000.01"},
		{"workspace tag", "tags: [pci, network]", "tags: [pci]"},
		{"workspace tag added", "tags: [pci, network]", "tags: [pci, network, sox]"},
		{"template rule approvers", "approvers: {groups: [platform], roles: [admin]}", "approvers: {groups: [platform], roles: [approver]}"},
		{"template rule min_approvals", "        min_approvals: 2\n        allow_self_approval: true\n        remind_before: 10m", "        min_approvals: 1\n        allow_self_approval: true\n        remind_before: 10m"},
		{"template rule timing", "remind_before: 10m", "remind_before: 11m"},
		{"template step stage", "      - name: change-ticket\n        stage: pre_apply", "      - name: change-ticket\n        stage: post_plan"},
		{"template no longer used", "    use: [baseline]\n", ""},
	}
	for _, tt := range changes {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(full, tt.old, tt.new, 1)
			if src == full {
				t.Fatalf("test setup: %q not found in testdata/full.yaml", tt.old)
			}
			if got := mustParse(t, src).Version; got == base {
				t.Errorf("got unchanged version %s after changing %s; want a different one", got, tt.name)
			}
		})
	}
}

// TestVersionOfOldConfigIsStable pins the version of a configuration that uses
// no timing or notification fields to the one it had before they existed, so
// that upgrading Gatehouse does not change the version runs record.
func TestVersionOfOldConfigIsStable(t *testing.T) {
	const want = "603002c6c28e620cf4f2592d3b6a6ae7002771ee7ac36fd5826784f776dfbaf5"
	if got := mustParse(t, readFile(t, "testdata/before-timing.yaml")).Version; got != want {
		t.Errorf("got version %s; want %s, as before timings existed", got, want)
	}
}

func TestVersionHidesWebhookSecret(t *testing.T) {
	const secret = "s3cret-that-must-not-leak"
	src := func(secret string) string {
		return ws("    notify: {webhook: {url: \"https://hooks.example.com/x\", secret: " + secret + "}}\n")
	}
	c := mustParse(t, src(secret))
	if other := mustParse(t, src(secret+"2")); other.Version == c.Version {
		t.Errorf("got version %s for two different secrets; want different versions", c.Version)
	}
	data, err := canonicalJSON(c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), secret) {
		t.Errorf("canonical form %s contains the secret", data)
	}
	if !strings.Contains(string(data), `"secret_sha256":"`+sha(secret)+`"`) {
		t.Errorf("canonical form %s lacks the secret's digest", data)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != c.Version {
		t.Errorf("Version %s is not the SHA-256 of the canonical form", c.Version)
	}
}

func TestWarnings(t *testing.T) {
	users := `users:
  - {id: alice, email: alice@x, groups: [platform], roles: [approver]}
  - {id: bob, email: bob@x, groups: [platform], roles: [approver]}
  - {id: vic, email: vic@x, groups: [platform], roles: [viewer]}
  - {id: erin, email: erin@x, roles: [admin]}
`
	tests := []struct {
		name      string
		approvers string
		min       int
		self      bool
		want      []Problem
	}{
		{"enough approvers", "{groups: [platform]}", 1, false, nil},
		{"as many approvers as required, with self-approval", "{groups: [platform]}", 2, true, nil},
		{"as many approvers as required", "{groups: [platform]}", 2, false, []Problem{{
			"workspaces[0].rules[0].min_approvals",
			"min_approvals 2 with 2 eligible: a run requested by one of them can never be approved (allow_self_approval is off)",
		}}},
		{"one approver for one approval", "{users: [erin]}", 1, false, []Problem{{
			"workspaces[0].rules[0].min_approvals",
			"min_approvals 1 with 1 eligible: a run requested by that user can never be approved",
		}}},
		{"one approver for one approval, with self-approval", "{users: [erin]}", 1, true, nil},
		{"viewers do not count", "{groups: [platform]}", 3, false, []Problem{{
			"workspaces[0].rules[0].min_approvals",
			"min_approvals 3 but only 2 users are eligible: the rule can never be satisfied",
		}}},
		{"viewers do not count, even with self-approval", "{groups: [platform]}", 3, true, []Problem{{
			"workspaces[0].rules[0].min_approvals",
			"min_approvals 3 but only 2 users are eligible: the rule can never be satisfied",
		}}},
		{"a person named twice counts once", "{users: [alice], groups: [platform]}", 3, false, []Problem{{
			"workspaces[0].rules[0].min_approvals",
			"min_approvals 3 but only 2 users are eligible",
		}}},
		{"one eligible user", "{roles: [admin]}", 2, false, []Problem{{
			"workspaces[0].rules[0].min_approvals",
			"min_approvals 2 but only 1 user is eligible: the rule can never be satisfied",
		}}},
		{"by role and user", "{users: [erin], roles: [approver]}", 2, false, nil},
		{"by role and user, all of them", "{users: [erin], roles: [approver]}", 3, false, []Problem{{
			"workspaces[0].rules[0].min_approvals",
			"min_approvals 3 with 3 eligible",
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := users + "workspaces:\n  - name: ws\n    rules:\n      - name: r\n        approvers: " + tt.approvers +
				"\n        min_approvals: " + strconv.Itoa(tt.min) + "\n        allow_self_approval: " + strconv.FormatBool(tt.self) + "\n"
			checkProblems(t, mustParse(t, src).Warnings(), tt.want)
		})
	}

	t.Run("steps", func(t *testing.T) {
		src := users + `workspaces:
  - name: ws
    steps:
      - {name: ok, stage: pre_apply, approvers: {groups: [platform]}, min_approvals: 1}
      - {name: sign-off, stage: post_apply, approvers: {groups: [platform]}, min_approvals: 3}
      - {name: pair, stage: post_plan, approvers: {groups: [platform]}, min_approvals: 2}
    rules:
      - {name: r, approvers: {roles: [admin]}, min_approvals: 2}
`
		checkProblems(t, mustParse(t, src).Warnings(), []Problem{
			{"workspaces[0].steps[1].min_approvals", "min_approvals 3 but only 2 users are eligible: the step can never be satisfied"},
			{"workspaces[0].steps[2].min_approvals", "min_approvals 2 with 2 eligible: a run requested by one of them can never be approved"},
			{"workspaces[0].rules[0].min_approvals", "min_approvals 2 but only 1 user is eligible: the rule can never be satisfied"},
		})
	})

	t.Run("templates, once at the template", func(t *testing.T) {
		src := users + `templates:
  - name: base
    steps:
      - {name: admin-ok, stage: pre_apply, approvers: {roles: [admin]}}
    rules:
      - {name: two, approvers: {groups: [platform]}, min_approvals: 2}
workspaces:
  - {name: a, use: [base]}
  - name: b
    use: [base]
    rules:
      - {name: own, approvers: {users: [alice]}}
  - name: c
    rules:
      # Replaces the template's rule: warned about where it is written.
      - {name: two, approvers: {groups: [platform]}, min_approvals: 2}
    use: [base]
`
		checkProblems(t, mustParse(t, src).Warnings(), []Problem{
			{"templates[0].steps[0].min_approvals", "min_approvals 1 with 1 eligible: a run requested by that user can never be approved"},
			{"templates[0].rules[0].min_approvals", "min_approvals 2 with 2 eligible"},
			{"workspaces[1].rules[0].min_approvals", "min_approvals 1 with 1 eligible"},
			{"workspaces[2].rules[0].min_approvals", "min_approvals 2 with 2 eligible"},
		})
	})
}

func TestExampleConfig(t *testing.T) {
	path := filepath.Join("..", "examples", "gatehouse.yaml")
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("got warnings %q; want none", w)
	}

	var ids []approval.UserID
	for _, u := range c.Users {
		ids = append(ids, u.ID)
	}
	if want := []approval.UserID{"alice", "bob", "carol", "dave", "erin", "victor", "ci-bot", "sam", "fiona", "dirk", "dana"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("got users %v; want %v", ids, want)
	}
	tokens := map[approval.UserID]string{"ci-bot": "dev-ci"}
	for _, id := range ids {
		token, ok := tokens[id]
		if !ok {
			token = "dev-" + string(id)
		}
		if u, ok := c.Authenticate(token); !ok || u.ID != id {
			t.Errorf("Authenticate(%s) = %q, %v; want %s, true", token, u.ID, ok, id)
		}
	}
	for _, u := range c.Users {
		if want := u.ID == "ci-bot"; u.Automation != want {
			t.Errorf("user %s: got automation %v; want %v", u.ID, u.Automation, want)
		}
	}
	wantBot := approval.Identity{ID: "ci-bot", Email: "ci@example.com", Source: approval.SourceLocal, Automation: true}
	if bot, _ := c.User("ci-bot"); !reflect.DeepEqual(bot.Identity, wantBot) {
		t.Errorf("got ci-bot %+v; want %+v", bot.Identity, wantBot)
	}
	wantSam := approval.Identity{ID: "sam", Email: "sam@example.com", Source: approval.SourceSSO,
		Groups: []string{"security"}, Roles: []approval.Role{approval.RoleApprover}}
	if sam, _ := c.User("sam"); !reflect.DeepEqual(sam.Identity, wantSam) {
		t.Errorf("got sam %+v; want %+v", sam.Identity, wantSam)
	}
	security := approval.Approvers{Groups: []string{"security"}}
	if got, want := security.Expand(c.Directory()), []approval.UserID{"dave", "sam"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got security group %v; want %v", got, want)
	}

	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// Each workspace's steps and rules as "name@stage".
	type gates struct {
		bypass       bool
		steps, rules []string
	}
	want := map[string]gates{
		// production-baseline's rules, then the workspace's own.
		"prod-network": {bypass: true,
			rules: []string{"destroys-need-two@post_plan", "changes-need-one@post_plan"}},
		// Both templates' rules, in use order.
		"prod-compute": {rules: []string{"destroys-need-two@post_plan", "finance-over-500@post_plan", "director-over-5000@post_plan"}},
		"prod-iam": {steps: []string{"security-signoff@post_apply"},
			rules: []string{"platform-review@post_plan", "security-before-apply@pre_apply", "iam-changes-need-security@post_plan"}},
		"staging-app": {},
	}
	// Besides these four, tofu-demo (Gatehouse plans it) and ci-gate
	// (gate only), checked below.
	if len(c.Workspaces) != len(want)+2 {
		t.Errorf("got %d workspaces; want %d", len(c.Workspaces), len(want)+2)
	}
	if w, _ := c.Workspace("tofu-demo"); w.Mode != approval.ModeTerraform || w.Terraform == nil ||
		w.Terraform.Dir != filepath.Join(root, "examples", "terraform", "network") || !w.Terraform.ReplanBeforeApply || len(w.Freeze) != 1 {
		t.Errorf("tofu-demo: mode %s, terraform %+v, freeze %+v; want Gatehouse to plan examples/terraform/network", w.Mode, w.Terraform, w.Freeze)
	}
	if w, _ := c.Workspace("ci-gate"); w.Mode != approval.ModeGate || w.Apply != nil || w.Terraform != nil {
		t.Errorf("ci-gate: mode %s; want gate only", w.Mode)
	}
	for name, want := range want {
		w, ok := c.Workspace(name)
		if !ok {
			t.Errorf("workspace %s missing", name)
			continue
		}
		var got gates
		got.bypass = w.AllowBypass
		for _, s := range w.Steps {
			got.steps = append(got.steps, s.Name+"@"+string(s.Stage))
		}
		for _, r := range w.Rules {
			got.rules = append(got.rules, r.Name+"@"+string(r.Stage))
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("workspace %s: got %+v; want %+v", name, got, want)
		}
		if w.Apply == nil {
			t.Errorf("workspace %s: got no apply section; want one", name)
			continue
		}
		if w.Apply.Dir != root {
			t.Errorf("workspace %s: got apply dir %q; want the repository root %q", name, w.Apply.Dir, root)
		}
		script := filepath.Join(w.Apply.Dir, w.Apply.Command[0])
		if info, err := os.Stat(script); err != nil || info.Mode()&0o111 == 0 {
			t.Errorf("workspace %s: apply command %s is not an executable file (stat: %v)", name, script, err)
		}
	}
	wantSignoff := approval.Step{Name: "security-signoff", Stage: approval.StagePostApply,
		Approvers: security, MinApprovals: 1}
	if w, _ := c.Workspace("prod-iam"); len(w.Steps) != 1 || !reflect.DeepEqual(w.Steps[0], wantSignoff) {
		t.Errorf("prod-iam: got steps %+v; want [%+v]", w.Steps, wantSignoff)
	}
	if w, ok := c.Workspace("prod-iam"); ok {
		if w.Environment != "production" || w.Timeout != 4*time.Hour || w.OnTimeout != approval.OutcomeReject {
			t.Errorf("prod-iam: got environment %q, timeout %s, on_timeout %q; want production, 4h, reject",
				w.Environment, w.Timeout, w.OnTimeout)
		}
		if prod, _ := c.Workspace("prod-network"); !reflect.DeepEqual(w.Apply, prod.Apply) {
			t.Errorf("prod-iam: got apply %+v; want the same as prod-network's %+v", w.Apply, prod.Apply)
		}
	}

	// prod-network reminds and escalates to erin, an admin: after 2h she may
	// approve its reasons too, as their fallback owner. Its rules inherit
	// all of it; no workspace notifies a webhook.
	wantTiming := map[string]approval.Timing{
		"prod-network": {Timeout: 4 * time.Hour, RemindEvery: time.Hour, RemindBefore: 30 * time.Minute,
			EscalateAfter: 2 * time.Hour, EscalateTo: approval.Approvers{Users: []approval.UserID{"erin"}}},
		"prod-iam":     {Timeout: 4 * time.Hour},
		"prod-compute": {Timeout: approval.DefaultTimeout},
		"staging-app":  {Timeout: approval.DefaultTimeout},
		"tofu-demo":    {Timeout: approval.DefaultTimeout},
		"ci-gate":      {Timeout: approval.DefaultTimeout},
	}
	for _, w := range c.Workspaces {
		if !reflect.DeepEqual(w.Timing, wantTiming[w.Name]) {
			t.Errorf("workspace %s: got timing %+v; want %+v", w.Name, w.Timing, wantTiming[w.Name])
		}
		for _, r := range w.Rules {
			if !reflect.DeepEqual(r.Timing, approval.Timing{}) {
				t.Errorf("workspace %s, rule %s: got timing %+v; want none of its own", w.Name, r.Name, r.Timing)
			}
		}
		for _, s := range w.Steps {
			if !reflect.DeepEqual(s.Timing, approval.Timing{}) {
				t.Errorf("workspace %s, step %s: got timing %+v; want none of its own", w.Name, s.Name, s.Timing)
			}
		}
		if w.Notify != nil {
			t.Errorf("workspace %s: got notify %+v; want none", w.Name, w.Notify)
		}
	}
	if erin, _ := c.User("erin"); !erin.HasRole(approval.RoleAdmin) {
		t.Errorf("got erin %+v; want an admin", erin.Identity)
	}

	// prod-network is tagged and checked against the production policy,
	// read relative to the config file.
	prod, _ := c.Workspace("prod-network")
	if want := []string{"network"}; !reflect.DeepEqual(prod.Tags, want) {
		t.Errorf("prod-network: got tags %q; want %q", prod.Tags, want)
	}
	policyPath := filepath.Join(root, "examples", "policies", "production.rego")
	wantPolicies := []Policy{{Name: "policies/production.rego", Path: policyPath, Source: readFile(t, policyPath)}}
	if !reflect.DeepEqual(prod.Policies, wantPolicies) {
		t.Errorf("prod-network: got policies %+v; want %+v", prod.Policies, wantPolicies)
	}
	if want := []string{"policies/production.rego"}; !reflect.DeepEqual(prod.Workspace.Policies, want) {
		t.Errorf("prod-network: got domain policies %q; want %q", prod.Workspace.Policies, want)
	}
	compute, _ := c.Workspace("prod-compute")
	if !reflect.DeepEqual(compute.Policies, wantPolicies) || !reflect.DeepEqual(compute.Tags, []string{"compute"}) {
		t.Errorf("prod-compute: got policies %+v, tags %q; want the production policy and tag compute", compute.Policies, compute.Tags)
	}
	for _, w := range c.Workspaces {
		if w.Name != "prod-network" && w.Name != "prod-compute" && (w.Policies != nil || w.Tags != nil) {
			t.Errorf("workspace %s: got policies %+v, tags %q; want none", w.Name, w.Policies, w.Tags)
		}
	}

	// What the rules ask for, by the reasons they give.
	reasons := func(w Workspace, plan approval.Plan, cost *approval.CostSummary) []string {
		var out []string
		for _, r := range approval.Evaluate(w.Workspace, plan, cost, approval.Identity{ID: "alice"}, c.Directory()) {
			out = append(out, r.Name)
		}
		return out
	}
	update := approval.Summarize("", []approval.Resource{{Address: "aws_vpc.main", Type: "aws_vpc", Actions: []approval.Action{approval.ActionUpdate}}})
	for _, tt := range []struct {
		name string
		cost *approval.CostSummary
		want []string
	}{
		{"no cost estimate: every cost tier (fail closed)", nil, []string{"finance-over-500", "director-over-5000"}},
		{"saves money", &approval.CostSummary{Currency: "USD", MonthlyCost: 1000, MonthlyCostDelta: -200}, nil},
		{"+500 exactly", &approval.CostSummary{Currency: "USD", MonthlyCost: 1500, MonthlyCostDelta: 500}, nil},
		{"+600", &approval.CostSummary{Currency: "USD", MonthlyCost: 1600, MonthlyCostDelta: 600}, []string{"finance-over-500"}},
		{"+6000", &approval.CostSummary{Currency: "USD", MonthlyCost: 7000, MonthlyCostDelta: 6000}, []string{"finance-over-500", "director-over-5000"}},
	} {
		if got := reasons(compute, update, tt.cost); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("prod-compute, an update, %s: got reasons %q; want %q", tt.name, got, tt.want)
		}
	}
	if got := reasons(prod, update, nil); !reflect.DeepEqual(got, []string{"changes-need-one"}) {
		t.Errorf("prod-network, an update without estimate: got reasons %q; want only changes-need-one (no cost tiers there)", got)
	}
	iam, _ := c.Workspace("prod-iam")
	for _, tt := range []struct {
		typ  string
		want []string
	}{
		{"aws_iam_role_policy", []string{"platform-review", "iam-changes-need-security", "security-before-apply", "security-signoff"}},
		{"aws_s3_bucket", []string{"platform-review", "security-before-apply", "security-signoff"}},
	} {
		plan := approval.Summarize("", []approval.Resource{{Address: tt.typ + ".x", Type: tt.typ, Actions: []approval.Action{approval.ActionCreate}}})
		if got := reasons(iam, plan, nil); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("prod-iam, creating a %s: got reasons %q; want %q", tt.typ, got, tt.want)
		}
	}

	t.Run("the commented-out notify block", func(t *testing.T) {
		lines := strings.Split(readFile(t, path), "\n")
		start := slices.Index(lines, "    # notify:")
		if start < 0 {
			t.Fatal("no commented-out notify block")
		}
		// The block is "# notify:" and the comment lines indented under it.
		lines[start] = "    notify:"
		for i := start + 1; i < len(lines) && strings.HasPrefix(lines[i], "    #   "); i++ {
			lines[i] = "    " + strings.TrimPrefix(lines[i], "    # ")
		}
		getenv := func(name string) string {
			return map[string]string{"GATEHOUSE_WEBHOOK_SECRET": "from-the-environment"}[name]
		}
		dir, err := filepath.Abs(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		c, err := parse([]byte(strings.Join(lines, "\n")), dir, getenv)
		if err != nil {
			t.Fatalf("parse with the notify block uncommented: %v", err)
		}
		w, _ := c.Workspace("prod-network")
		want := &Notify{Webhook: &Webhook{URL: "https://hooks.example.com/gatehouse", Secret: "from-the-environment"}}
		if !reflect.DeepEqual(w.Notify, want) {
			t.Errorf("got notify %+v; want %+v", w.Notify, want)
		}
	})
}
