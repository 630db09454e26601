package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

const deployUsers = `users:
  - {id: alice, email: alice@example.com, groups: [platform], roles: [approver], token: a}
  - {id: ci, email: ci@example.com, source: local, automation: true, token: c}
`

func TestWorkspaceModes(t *testing.T) {
	c := mustParse(t, deployUsers+`workspaces:
  - name: planned
    terraform: {dir: infra, vars: {region: eu-west-1}, env_from: [AWS_PROFILE], replan_before_apply: true, timeout: 30m}
    approval_ttl: 2h
    supersede: false
    freeze: [{cron: "0 18 * * FRI", duration: 62h, reason: weekend}]
  - name: checkout
    terraform: {binary: terraform, git: {url: "file:///srv/infra.git", path: ./net}}
    hooks: {secret: hook-secret}
    github: {repository: acme/infra, paths: ["net/**"]}
  - name: command
    apply: {command: [./apply.sh]}
  - name: gate
github: {webhook_secret: gh-secret, automation_user: ci, users: {octocat: alice}}
`)
	planned, _ := c.Workspace("planned")
	if planned.Mode != approval.ModeTerraform || planned.Supersede || planned.ApprovalTTL != 2*time.Hour ||
		!reflect.DeepEqual(planned.Freeze, []approval.FreezeWindow{{Cron: "0 18 * * FRI", Duration: 62 * time.Hour, Reason: "weekend"}}) {
		t.Errorf("planned: %+v", planned.Workspace)
	}
	if tf := planned.Terraform; tf == nil || tf.Binary != "tofu" || tf.Dir != "infra" || tf.Timeout != 30*time.Minute ||
		!tf.ReplanBeforeApply || tf.Vars["region"] != "eu-west-1" || !reflect.DeepEqual(tf.EnvFrom, []string{"AWS_PROFILE"}) {
		t.Errorf("planned terraform: %+v", planned.Terraform)
	}
	checkout, _ := c.Workspace("checkout")
	if g := checkout.Terraform.Git; g == nil || g.Ref != "main" || g.Path != "net" || checkout.Terraform.Dir != "" || !checkout.Supersede {
		t.Errorf("checkout: %+v %+v", checkout.Terraform, checkout.Terraform.Git)
	}
	if checkout.Hooks == nil || checkout.Hooks.Secret != "hook-secret" || checkout.GitHub == nil || checkout.GitHub.Branch != "main" {
		t.Errorf("checkout hooks %+v github %+v", checkout.Hooks, checkout.GitHub)
	}
	for name, want := range map[string]approval.Mode{"command": approval.ModeCommand, "gate": approval.ModeGate} {
		if ws, _ := c.Workspace(name); ws.Mode != want {
			t.Errorf("%s: mode %s; want %s", name, ws.Mode, want)
		}
	}
	if g := c.GitHub; g == nil || g.AutomationUser != "ci" || g.Users["octocat"] != "alice" || g.WebhookSecret != "gh-secret" {
		t.Errorf("github: %+v", c.GitHub)
	}
}

func TestDeploymentMistakesAreExplained(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []Problem
	}{
		{"terraform and apply", `
  - name: w
    terraform: {dir: .}
    apply: {command: [x]}`, []Problem{{"workspaces[0]", "terraform and apply: give one (terraform: Gatehouse plans and applies; apply: your command applies a submitted plan)"}}},
		{"dir and git", `
  - name: w
    terraform: {dir: ., git: {url: "https://example.com/r.git"}}`, []Problem{{"workspaces[0].terraform", "dir and git: give one (dir: a directory on the worker; git: a checkout per run)"}}},
		{"git without url, a path outside, a ref like an option", `
  - name: w
    terraform: {git: {ref: "-x", path: ../up}}`, []Problem{
			{"workspaces[0].terraform.git.url", "required: the repository to check out (https://…, ssh://…, git@host:org/repo or file:///…)"},
			{"workspaces[0].terraform.git.ref", `"-x" is not a ref`},
			{"workspaces[0].terraform.git.path", `"../up" must be a path inside the checkout`}}},
		{"bad var name and env_from secret", `
  - name: w
    terraform: {dir: ., vars: {"bad name": x}, env_from: [GATEHOUSE_SIGNING_KEYS]}`, []Problem{
			{"workspaces[0].terraform.vars.bad name", `"bad name" is not a variable name (want letters, digits, _ and -)`},
			{"workspaces[0].terraform.env_from[0]", "GATEHOUSE_SIGNING_KEYS holds Gatehouse's signing keys: an apply command may not see it"}}},
		{"freeze", `
  - name: w
    freeze: [{cron: "61 * * * *", duration: 1h}, {cron: "@weekly"}]`, []Problem{
			{"workspaces[0].freeze[0].cron", `cron "61 * * * *": end of range (61) above maximum (59): 61`},
			{"workspaces[0].freeze[1].duration", "required: how long the window lasts, e.g. 62h"}}},
		{"hooks and github without terraform", `
  - name: w
    hooks: {secret: s}
    github: {repository: acme/infra}`, []Problem{
			{"workspaces[0].hooks", "needs a terraform block: a hook names a ref, and Gatehouse plans it"},
			{"workspaces[0].github", "needs terraform.git: Gatehouse checks out and plans what was pushed or merged"}}},
		{"task queue", `
  - name: w
    task_queue: "-apply prod"`, []Problem{{"workspaces[0].task_queue", `"-apply prod" is not a task queue name: letters, digits, '.', '_' and '-', at most 200, starting with a letter or digit`}}},
		{"bad repository", `
  - name: w
    terraform: {git: {url: "https://example.com/r.git"}}
    github: {repository: infra}`, []Problem{{"workspaces[0].github.repository", `"infra" is not a GitHub repository (want org/repo)`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := problemsOf(t, deployUsers+"workspaces:"+tc.yaml+"\n")
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestGitHubBlockNeedsAnAutomationUserAndKnownUsers(t *testing.T) {
	got := problemsOf(t, deployUsers+`workspaces:
  - name: w
github: {webhook_secret: s, automation_user: alice, users: {octocat: nobody}}
`)
	want := []Problem{
		{"github.automation_user", `user "alice" is not an automation user (automation: true)`},
		{"github.users.octocat", `unknown user "nobody"`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
	got = problemsOf(t, deployUsers+"workspaces:\n  - name: w\ngithub: {automation_user: ci}\n")
	if len(got) != 1 || !strings.Contains(got[0].Message, "webhook_secret_env") {
		t.Errorf("no secret: got %v; want one problem naming webhook_secret_env", got)
	}
}

func TestDeploymentBlocksChangeTheVersionOnlyWhenSet(t *testing.T) {
	base := mustParse(t, deployUsers+"workspaces:\n  - name: w\n    apply: {command: [x]}\n")
	same := mustParse(t, deployUsers+"workspaces:\n  - name: w\n    apply: {command: [x]}\n    supersede: true\n")
	if base.Version != same.Version {
		t.Error("supersede: true (the default) changed the version")
	}
	for _, extra := range []string{"    supersede: false\n", "    approval_ttl: 1h\n", "    task_queue: apply-prod\n", "    freeze: [{cron: \"@daily\", duration: 1h}]\n"} {
		c := mustParse(t, deployUsers+"workspaces:\n  - name: w\n    apply: {command: [x]}\n"+extra)
		if c.Version == base.Version {
			t.Errorf("%q did not change the version", strings.TrimSpace(extra))
		}
	}
}

func TestTaskQueuesListsEachQueueOnce(t *testing.T) {
	c := mustParse(t, deployUsers+`workspaces:
  - {name: a, task_queue: apply-prod}
  - {name: b}
  - {name: c, task_queue: apply-prod}
  - {name: d, task_queue: gatehouse}
  - {name: e, task_queue: apply-pci}
`)
	if got, want := c.TaskQueues("gatehouse"), []string{"gatehouse", "apply-prod", "apply-pci"}; !reflect.DeepEqual(got, want) {
		t.Errorf("TaskQueues = %v; want %v", got, want)
	}
	if ws, _ := c.Workspace("a"); ws.TaskQueue != "apply-prod" {
		t.Errorf("workspace a's queue = %q", ws.TaskQueue)
	}
}
