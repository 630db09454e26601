package activities_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/plan"
)

// Documents the policy tests evaluate: real plans and Infracost estimates.
const (
	securityPlan  = "testdata/plans/security.json"              // deletes a KMS key, creates IAM, replaces 3
	networkPlan   = "../examples/plans/prod-network.json"       // no KMS, no IAM, replaces 1
	smallCost     = "../cost/testdata/breakdown.json"           // +63.218 USD a month
	expensiveCost = "../cost/testdata/breakdown-expensive.json" // +1123.762 USD a month
)

// policyFile is a policy of testdata/policies, named as a config would name
// it.
func policyFile(t *testing.T, name string) config.Policy {
	t.Helper()
	path := filepath.Join("testdata", "policies", name+".rego")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return config.Policy{Name: path, Path: abs, Source: string(src)}
}

func policyFiles(t *testing.T, names ...string) []config.Policy {
	var out []config.Policy
	for _, n := range names {
		out = append(out, policyFile(t, n))
	}
	return out
}

func policyName(name string) string { return filepath.Join("testdata", "policies", name+".rego") }

// policyActivities returns activities whose config has one workspace "ws"
// with the policies, and a store holding the documents, by file name.
func policyActivities(t *testing.T, ws approval.Workspace, policies []config.Policy, docs ...string) (*activities.Activities, map[string]string) {
	t.Helper()
	ws.Name = "ws"
	cfg := &config.Config{Workspaces: []config.Workspace{{Workspace: ws, Policies: policies}}}
	store, err := plan.NewStore(filepath.Join(t.TempDir(), "plans"))
	if err != nil {
		t.Fatal(err)
	}
	shas := map[string]string{}
	for _, d := range docs {
		data, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		if shas[d], err = store.Put(data); err != nil {
			t.Fatal(err)
		}
	}
	return &activities.Activities{Config: cfg, Plans: store, Logger: zap.NewNop()}, shas
}

func runPolicy(t *testing.T, a *activities.Activities, in activities.PolicyInput) (approval.PolicyResult, error) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.EvaluatePolicy, in)
	if err != nil {
		return approval.PolicyResult{}, err
	}
	var res approval.PolicyResult
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

var ignoreTime = cmpopts.IgnoreFields(approval.PolicyResult{}, "EvaluatedAt")

var (
	kmsDenial     = "aws_kms_key.legacy: deleting a KMS key is not allowed; schedule the key's deletion by hand"
	iamReview     = approval.PolicyRequirement{Name: "iam-review", Approvers: approval.Approvers{Groups: []string{"security"}, Roles: []approval.Role{"admin"}}, MinApprovals: 2, Stage: approval.StagePreApply, Policy: policyName("require")}
	prodOwner     = approval.PolicyRequirement{Name: "production-owner", Approvers: approval.Approvers{Users: []approval.UserID{"alice"}}, MinApprovals: 1, Policy: policyName("require")}
	finance       = approval.PolicyRequirement{Name: "finance", Approvers: approval.Approvers{Groups: []string{"finance"}}, MinApprovals: 1, Stage: approval.StagePostPlan, Policy: policyName("cost")}
	securityWarns = []string{
		"3 resources will be replaced (more than 2)",
		"aws_instance.web will be replaced: its local disks and public IP are lost",
		"aws_instance.worker[0] will be replaced: its local disks and public IP are lost",
	}
	noCostWarn = "no cost estimate was submitted: the finance check did not run"
)

func TestEvaluatePolicyOutcomes(t *testing.T) {
	all := []string{"deny", "require", "warn", "cost"}
	tests := []struct {
		name     string
		env      string
		policies []string
		plan     string
		cost     string
		want     approval.PolicyResult // Policies and PlanSHA256 are filled in
	}{
		{
			name: "security plan with an expensive estimate in production", env: "production",
			policies: all, plan: securityPlan, cost: expensiveCost,
			want: approval.PolicyResult{
				Denials:      []string{kmsDenial},
				Warnings:     append(securityWarns[:3:3], "monthly cost rises by 1123.762 USD"),
				Requirements: []approval.PolicyRequirement{finance, iamReview, prodOwner},
			},
		},
		{
			name: "security plan with a small estimate in staging", env: "staging",
			policies: all, plan: securityPlan, cost: smallCost,
			want: approval.PolicyResult{
				Denials:      []string{kmsDenial},
				Warnings:     append(securityWarns[:3:3], "monthly cost rises by 63.218 USD"),
				Requirements: []approval.PolicyRequirement{iamReview},
			},
		},
		{
			name: "network plan without an estimate in production", env: "production",
			policies: all, plan: networkPlan,
			want: approval.PolicyResult{
				Warnings:     []string{noCostWarn},
				Requirements: []approval.PolicyRequirement{prodOwner},
			},
		},
		{
			name: "network plan passes the deny and require policies", env: "staging",
			policies: []string{"deny", "require"}, plan: networkPlan, cost: smallCost,
			want: approval.PolicyResult{},
		},
		{
			name: "cost policy alone over the limit", env: "staging",
			policies: []string{"cost"}, plan: networkPlan, cost: expensiveCost,
			want: approval.PolicyResult{
				Warnings:     []string{"monthly cost rises by 1123.762 USD"},
				Requirements: []approval.PolicyRequirement{finance},
			},
		},
		{
			name: "no policies", env: "production", plan: securityPlan, cost: expensiveCost,
			want: approval.PolicyResult{},
		},
		{
			name: "syntax error", env: "production",
			policies: []string{"deny", "syntax_error"}, plan: securityPlan,
			want: approval.PolicyResult{
				Error: `policy "testdata/policies/syntax_error.rego": line 4: rego_parse_error: ` + "`contains` keyword is required for partial set rules",
			},
		},
		{
			name: "runtime error under strict built-in errors", env: "production",
			policies: []string{"deny", "runtime_error"}, plan: securityPlan,
			want: approval.PolicyResult{
				Error: `policy "testdata/policies/runtime_error.rego": line 8: eval_builtin_error: to_number: strconv.ParseFloat: parsing "legacy": invalid syntax`,
			},
		},
		{
			name: "conflicting values of a complete rule", env: "production",
			policies: []string{"warn", "conflict"}, plan: networkPlan,
			want: approval.PolicyResult{
				Error: `policy "testdata/policies/conflict.rego": line 7: eval_conflict_error: rule data.gatehouse.max_replaces_allowed produced conflicting values:`,
			},
		},
		{
			name: "no conflict when only one definition holds", env: "staging",
			policies: []string{"warn", "conflict"}, plan: networkPlan,
			want: approval.PolicyResult{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := []string{tt.plan}
			if tt.cost != "" {
				docs = append(docs, tt.cost)
			}
			a, shas := policyActivities(t, approval.Workspace{Environment: tt.env, Tags: []string{"pci"}}, policyFiles(t, tt.policies...), docs...)
			in := activities.PolicyInput{
				RunID: "run-1", Workspace: "ws", Environment: tt.env, RequestedBy: "bob", Message: "rotate things",
				Tags: []string{"pci"}, PlanSHA256: shas[tt.plan], CostSHA256: shas[tt.cost],
			}
			got, err := runPolicy(t, a, in)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			want.Policies = []string{}
			for _, p := range tt.policies {
				want.Policies = append(want.Policies, policyName(p))
			}
			want.PlanSHA256 = shas[tt.plan]
			if diff := cmp.Diff(want, got, ignoreTime); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
			if got.EvaluatedAt.IsZero() {
				t.Error("EvaluatedAt not set")
			}
		})
	}
}

// What a policy returns is checked strictly: a value of the wrong type, a
// misspelt field or a module that does not compile fails the evaluation,
// naming the policy.
func TestEvaluatePolicyRejectsBadPolicies(t *testing.T) {
	const pkg = "package gatehouse\n\n"
	tests := []struct {
		name, source, want string
	}{
		{"deny not strings", pkg + `deny contains 42 if true`,
			`deny: expected a set of strings, found an element number 42`},
		{"warn a string", pkg + `warn := "no"`,
			`warn: expected a set of strings, found string "no"`},
		{"deny a string as well as a set", pkg + `deny := "no"`,
			`line 3: rego_type_error: conflicting rules data.gatehouse.deny found`},
		{"warn an object", pkg + `warn contains {"msg": "careful"} if true`,
			`warn: expected a set of strings, found an element object {"msg":"careful"}`},
		{"requirement a string", pkg + `require_approval contains "finance" if true`,
			`require_approval[0]: expected an object, found string "finance"`},
		{"require_approval an object", pkg + `require_approval := {"name": "finance"}`,
			`require_approval: expected a set of objects, found object {"name":"finance"}`},
		{"name missing", pkg + `require_approval contains {"approvers": {"groups": ["finance"]}} if true`,
			`require_approval[0]: missing name`},
		{"name a number", pkg + `require_approval contains {"name": 7} if true`,
			`require_approval[0]: name: expected a string, found number 7`},
		{"min_approvals a string", pkg + `require_approval contains {"name": "finance", "approvers": {"groups": ["finance"]}, "min_approvals": "2"} if true`,
			`require_approval[0] (finance): min_approvals: expected an integer, found string "2"`},
		{"min_approvals a fraction", pkg + `require_approval contains {"name": "finance", "approvers": {"groups": ["finance"]}, "min_approvals": 1.5} if true`,
			`require_approval[0] (finance): min_approvals: expected an integer, found number 1.5`},
		{"min_approvals zero", pkg + `require_approval contains {"name": "finance", "approvers": {"groups": ["finance"]}, "min_approvals": 0} if true`,
			`require_approval[0] (finance): min_approvals: must be at least 1, found 0`},
		{"misspelt field", pkg + `require_approval contains {"name": "finance", "approvers": {"groups": ["finance"]}, "min_approval": 2} if true`,
			`require_approval[0] (finance): min_approval: unknown field (known: name, approvers, min_approvals, stage)`},
		{"approvers a list", pkg + `require_approval contains {"name": "finance", "approvers": ["finance"]} if true`,
			`require_approval[0] (finance): approvers: expected an object, found array ["finance"]`},
		{"users a string", pkg + `require_approval contains {"name": "finance", "approvers": {"users": "alice"}} if true`,
			`require_approval[0] (finance): approvers.users: expected an array of strings, found string "alice"`},
		{"groups of numbers", pkg + `require_approval contains {"name": "finance", "approvers": {"groups": [1]}} if true`,
			`require_approval[0] (finance): approvers.groups: expected an array of strings, found an element number 1`},
		{"unknown approvers field", pkg + `require_approval contains {"name": "finance", "approvers": {"team": ["finance"]}} if true`,
			`require_approval[0] (finance): approvers.team: unknown field (known: users, groups, roles)`},
		{"stage a number", pkg + `require_approval contains {"name": "finance", "approvers": {"groups": ["finance"]}, "stage": 2} if true`,
			`require_approval[0] (finance): stage: expected a string, found number 2`},
		{"wrong package", "package terraform\n\ndeny contains \"x\" if true\n",
			`declares package terraform: want package gatehouse`},
		{"unsafe variable", pkg + "deny contains msg if {\n\tsome rc in input.plan.resource_changes\n}\n",
			`line 3: rego_unsafe_var_error: var msg is unsafe in rule deny`},
		{"type error", pkg + "deny contains msg if {\n\tmsg := concat(\", \", 1)\n}\n",
			`line 4: rego_type_error: concat: invalid argument(s)`},
		{"empty", "",
			`rego_parse_error: empty module`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			policies := []config.Policy{policyFile(t, "deny"), {Name: "inline/bad.rego", Source: tt.source}}
			a, shas := policyActivities(t, approval.Workspace{}, policies, securityPlan)
			got, err := runPolicy(t, a, activities.PolicyInput{RunID: "r", Workspace: "ws", PlanSHA256: shas[securityPlan]})
			if err != nil {
				t.Fatal(err)
			}
			want := approval.PolicyResult{
				Policies:   []string{policyName("deny"), "inline/bad.rego"},
				Error:      `policy "inline/bad.rego": ` + tt.want,
				PlanSHA256: shas[securityPlan],
			}
			if diff := cmp.Diff(want, got, ignoreTime); diff != "" {
				t.Errorf("result (-want +got):\n%s", diff)
			}
		})
	}
}

// The policies see the full plan and estimate (numbers exact), the run and
// the workspace.
func TestEvaluatePolicyInput(t *testing.T) {
	echo := config.Policy{Name: "echo.rego", Source: `package gatehouse

warn contains sprintf("run id=%s workspace=%s environment=%s requested_by=%s message=%s", [
	input.run.id, input.run.workspace, input.run.environment, input.run.requested_by, input.run.message,
])

warn contains sprintf("workspace name=%s environment=%s tags=%v", [
	input.workspace.name, input.workspace.environment, input.workspace.tags,
])

warn contains sprintf("plan format=%s changes=%d window=%v", [
	input.plan.format_version, count(input.plan.resource_changes),
	input.plan.resource_changes[0].change.before.deletion_window_in_days,
])

warn contains sprintf("cost version=%s first=%s hourly=%s", [
	input.cost.version, input.cost.projects[0].breakdown.resources[0].name, input.cost.totalHourlyCost,
])

warn contains "cost null" if input.cost == null
`}
	a, shas := policyActivities(t, approval.Workspace{}, []config.Policy{echo}, securityPlan, smallCost)
	in := activities.PolicyInput{
		RunID: "run-7", Workspace: "ws", Environment: "production", RequestedBy: "bob",
		Message: "retire the legacy key", Tags: []string{"pci", "team-security"},
		PlanSHA256: shas[securityPlan], CostSHA256: shas[smallCost],
	}
	got, err := runPolicy(t, a, in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"cost version=0.2 first=aws_nat_gateway.main hourly=0.1336794520547945",
		"plan format=1.2 changes=9 window=30",
		"run id=run-7 workspace=ws environment=production requested_by=bob message=retire the legacy key",
		`workspace name=ws environment=production tags=["pci", "team-security"]`,
	}
	if diff := cmp.Diff(want, got.Warnings); diff != "" || got.Error != "" {
		t.Errorf("warnings (-want +got):\n%s\nerror: %s", diff, got.Error)
	}

	in.CostSHA256, in.Tags = "", nil
	got, err = runPolicy(t, a, in)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"cost null",
		"plan format=1.2 changes=9 window=30",
		"run id=run-7 workspace=ws environment=production requested_by=bob message=retire the legacy key",
		"workspace name=ws environment=production tags=[]",
	}
	if diff := cmp.Diff(want, got.Warnings); diff != "" || got.Error != "" {
		t.Errorf("without an estimate, warnings (-want +got):\n%s\nerror: %s", diff, got.Error)
	}
}

// The result does not depend on the order of the policies or of evaluation.
func TestEvaluatePolicyIsDeterministic(t *testing.T) {
	forward := policyFiles(t, "deny", "require", "warn", "cost")
	backward := policyFiles(t, "cost", "warn", "require", "deny")
	var first approval.PolicyResult
	for i := range 6 {
		policies := forward
		if i%2 == 1 {
			policies = backward
		}
		a, shas := policyActivities(t, approval.Workspace{}, policies, securityPlan, expensiveCost)
		got, err := runPolicy(t, a, activities.PolicyInput{RunID: "r", Workspace: "ws", Environment: "production", PlanSHA256: shas[securityPlan], CostSHA256: shas[expensiveCost]})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = got
			continue
		}
		if diff := cmp.Diff(first, got, ignoreTime, cmpopts.IgnoreFields(approval.PolicyResult{}, "Policies")); diff != "" {
			t.Fatalf("evaluation %d differs (-first +got):\n%s", i, diff)
		}
	}
}

// Two policies asking for the same approval: it is asked for once, credited
// to the first.
func TestEvaluatePolicySameRequirementTwice(t *testing.T) {
	const src = `package gatehouse

require_approval contains {"name": "security", "approvers": {"groups": ["security"]}} if true
`
	policies := []config.Policy{{Name: "b.rego", Source: src}, {Name: "a.rego", Source: src}}
	a, shas := policyActivities(t, approval.Workspace{}, policies, networkPlan)
	got, err := runPolicy(t, a, activities.PolicyInput{RunID: "r", Workspace: "ws", PlanSHA256: shas[networkPlan]})
	if err != nil {
		t.Fatal(err)
	}
	want := []approval.PolicyRequirement{{Name: "security", Approvers: approval.Approvers{Groups: []string{"security"}}, MinApprovals: 1, Policy: "b.rego"}}
	if diff := cmp.Diff(want, got.Requirements); diff != "" || got.Error != "" {
		t.Errorf("requirements (-want +got):\n%s\nerror: %s", diff, got.Error)
	}
}

// Policies loaded by config.Parse evaluate the source it read.
func TestEvaluatePolicyFromParsedConfig(t *testing.T) {
	cfg, err := config.Parse([]byte(`workspaces:
  - name: ws
    environment: production
    policies: [testdata/policies/deny.rego, testdata/policies/require.rego]
`))
	if err != nil {
		t.Fatal(err)
	}
	a, shas := policyActivities(t, approval.Workspace{}, nil, securityPlan)
	a.Config = cfg
	got, err := runPolicy(t, a, activities.PolicyInput{RunID: "r", Workspace: "ws", Environment: "production", PlanSHA256: shas[securityPlan]})
	if err != nil {
		t.Fatal(err)
	}
	want := approval.PolicyResult{
		Policies:     []string{"testdata/policies/deny.rego", "testdata/policies/require.rego"},
		Denials:      []string{kmsDenial},
		Requirements: []approval.PolicyRequirement{iamReview, prodOwner},
		PlanSHA256:   shas[securityPlan],
	}
	if diff := cmp.Diff(want, got, ignoreTime); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

func TestEvaluatePolicyLogs(t *testing.T) {
	printing := config.Policy{Name: "print.rego", Source: "package gatehouse\n\nwarn contains \"printed\" if {\n\tprint(\"changes:\", count(input.plan.resource_changes))\n}\n"}
	a, shas := policyActivities(t, approval.Workspace{}, append(policyFiles(t, "deny", "require", "warn"), printing), securityPlan)
	core, logs := observer.New(zap.InfoLevel)
	a.Logger = zap.New(core)
	if _, err := runPolicy(t, a, activities.PolicyInput{RunID: "run-9", Workspace: "ws", PlanSHA256: shas[securityPlan]}); err != nil {
		t.Fatal(err)
	}
	entries := logs.FilterMessage("policies evaluated").All()
	if len(entries) != 1 {
		t.Fatalf("%d log lines; want 1", len(entries))
	}
	fields := entries[0].ContextMap()
	for k, want := range map[string]any{"run_id": "run-9", "workspace": "ws", "denials": int64(1), "warnings": int64(4), "requirements": int64(1), "error": ""} {
		if fields[k] != want {
			t.Errorf("log field %s = %#v; want %#v", k, fields[k], want)
		}
	}
	// print() output reaches the worker log, located.
	prints := logs.FilterMessage("policy print").All()
	if len(prints) != 1 {
		t.Fatalf("%d print lines; want 1", len(prints))
	}
	fields = prints[0].ContextMap()
	for k, want := range map[string]any{"run_id": "run-9", "policy": "print.rego", "line": int64(4), "output": "changes: 9"} {
		if fields[k] != want {
			t.Errorf("print field %s = %#v; want %#v", k, fields[k], want)
		}
	}
}

// Missing infrastructure is not the policies' fault: the activity fails
// without retrying.
func TestEvaluatePolicyInfrastructureErrors(t *testing.T) {
	a, shas := policyActivities(t, approval.Workspace{}, policyFiles(t, "deny"), securityPlan, smallCost)
	if err := os.WriteFile(a.Plans.Path(shas[smallCost]), []byte(`{"version":"0.2"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := strings.Repeat("a", 64)
	tests := []struct {
		name     string
		in       activities.PolicyInput
		kind     string
		contains string
	}{
		{"unknown workspace", activities.PolicyInput{Workspace: "nope", PlanSHA256: shas[securityPlan]}, "WorkspaceUnknown", `workspace "nope" is not configured`},
		{"plan missing", activities.PolicyInput{Workspace: "ws", PlanSHA256: missing}, "PlanUnavailable", "plan not found"},
		{"no plan hash", activities.PolicyInput{Workspace: "ws"}, "PlanUnavailable", "malformed hash"},
		{"estimate missing", activities.PolicyInput{Workspace: "ws", PlanSHA256: shas[securityPlan], CostSHA256: missing}, "CostUnavailable", "plan not found"},
		{"estimate altered", activities.PolicyInput{Workspace: "ws", PlanSHA256: shas[securityPlan], CostSHA256: shas[smallCost]}, "CostUnavailable", "altered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.RunID = "r"
			res, err := runPolicy(t, a, tt.in)
			var appErr *temporal.ApplicationError
			if !errors.As(err, &appErr) {
				t.Fatalf("result %+v, error %v; want an application error", res, err)
			}
			if appErr.Type() != tt.kind || !appErr.NonRetryable() || !strings.Contains(appErr.Error(), tt.contains) {
				t.Errorf("error %v (type %s, non-retryable %v); want non-retryable %s containing %q",
					appErr, appErr.Type(), appErr.NonRetryable(), tt.kind, tt.contains)
			}
		})
	}
}
