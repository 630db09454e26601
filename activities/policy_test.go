package activities_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/plan"
)

// Documents the policy tests evaluate: real plans and Infracost estimates
// (testdata/plans/SOURCES.md says whose).
const (
	securityPlan  = "testdata/plans/security.json"                  // deletes a KMS key, creates IAM, replaces 3
	networkPlan   = "../examples/plans/prod-network.json"           // no KMS, no IAM, replaces 1
	gkePlan       = "testdata/plans/conftest-gke-show.json"         // conftest's: creates a GKE cluster and node pool
	tutorialPlan  = "testdata/plans/opa-tutorial-tfplan.json"       // OPA's tutorial: creates an ASG, an instance, a launch config
	sensitivePlan = "testdata/plans/opentofu-sensitive-values.json" // OpenTofu's: a create whose ami "boop" is sensitive
	smallCost     = "../cost/testdata/breakdown.json"               // +63.218 USD a month
	expensiveCost = "../cost/testdata/breakdown-expensive.json"     // +1123.762 USD a month
)

// policyFile is a policy of testdata/policies, named as a config would name
// it.
func policyFile(t testing.TB, name string) config.Policy {
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

func policyFiles(t testing.TB, names ...string) []config.Policy {
	var out []config.Policy
	for _, n := range names {
		out = append(out, policyFile(t, n))
	}
	return out
}

func policyName(name string) string { return filepath.Join("testdata", "policies", name+".rego") }

// policyActivities returns activities whose config has one workspace "ws"
// with the policies, and a store holding the documents, by file name.
func policyActivities(t testing.TB, ws approval.Workspace, policies []config.Policy, docs ...string) (*activities.Activities, map[string]string) {
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

func runPolicy(t testing.TB, a *activities.Activities, in activities.PolicyInput) (approval.PolicyResult, error) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(a.EvaluatePolicy)
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
				Error: `policy "testdata/policies/syntax_error.rego": not valid Rego v1: line 4: rego_parse_error: ` + "`if` keyword is required before rule body (and 1 more error)",
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
			`deny: expected a set of strings or of objects with a msg, found an element number 42`},
		{"warn a string", pkg + `warn := "no"`,
			`line 3: warn must be a set: write "warn contains ... if { ... }"`},
		{"deny_x a string", pkg + `deny_public := "no"`,
			`line 3: deny_public must be a set: write "deny_public contains ... if { ... }"`},
		{"violation a boolean", pkg + `violation if true`,
			`line 3: violation must be a set: write "violation contains ... if { ... }"`},
		{"warn an object without msg", pkg + `warn contains {"message": "careful"} if true`,
			`warn: expected an object with a string msg, found object {"message":"careful"}`},
		{"violation_x msg a number", pkg + `violation_tags contains {"msg": 7} if true`,
			`violation_tags: expected an object with a string msg, found object {"msg":7}`},
		{"requirement a string", pkg + `require_approval contains "finance" if true`,
			`require_approval[0]: expected an object, found string "finance"`},
		{"require_approval an object", pkg + `require_approval := {"name": "finance"}`,
			`line 3: require_approval must be a set: write "require_approval contains ... if { ... }"`},
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
			`declares package terraform: Gatehouse reads data.gatehouse, so want package gatehouse`},
		{"unsafe variable", pkg + "deny contains msg if {\n\tsome rc in input.resource_changes\n}\n",
			`does not compile: line 3: rego_unsafe_var_error: var msg is unsafe`},
		{"type error", pkg + "deny contains msg if {\n\tmsg := concat(\", \", 1)\n}\n",
			`does not compile: line 4: rego_type_error: concat: invalid argument(s)`},
		{"empty", "",
			`not valid Rego v1: rego_parse_error: empty module`},
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

// The policies see the plan exactly as Terraform prints it (numbers exact)
// and Gatehouse's context beside it, at input.gatehouse.
func TestEvaluatePolicyInput(t *testing.T) {
	echo := config.Policy{Name: "echo.rego", Source: `package gatehouse

g := input.gatehouse

warn contains sprintf("run id=%s message=%s requested_by=%s", [g.run.id, g.run.message, g.requested_by])

warn contains sprintf("workspace name=%s environment=%s tags=%v", [g.workspace.name, g.workspace.environment, g.workspace.tags])

warn contains sprintf("plan format=%s changes=%d window=%v", [
	input.format_version, count(input.resource_changes),
	input.resource_changes[0].change.before.deletion_window_in_days,
])

warn contains sprintf("cost status=%s delta=%v total=%v past=%v currency=%s version=%s first=%s", [
	g.cost.status, g.cost.monthly_cost_delta, g.cost.monthly_cost, g.cost.past_monthly_cost, g.cost.currency,
	g.cost.estimate.version, g.cost.estimate.projects[0].breakdown.resources[0].name,
]) if g.cost.status == "ok"

warn contains sprintf("cost %v", [g.cost]) if g.cost.status != "ok"
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
		"cost status=ok delta=63.218 total=97.586 past=34.368 currency=USD version=0.2 first=aws_nat_gateway.main",
		"plan format=1.2 changes=9 window=30",
		"run id=run-7 message=retire the legacy key requested_by=bob",
		`workspace name=ws environment=production tags=["pci", "team-security"]`,
	}
	if diff := cmp.Diff(want, got.Warnings); diff != "" || got.Error != "" {
		t.Errorf("warnings (-want +got):\n%s\nerror: %s", diff, got.Error)
	}

	// A plan's own "gatehouse" key cannot pose as Gatehouse's context.
	var doc map[string]any
	if err := json.Unmarshal([]byte(readFile(t, securityPlan)), &doc); err != nil {
		t.Fatal(err)
	}
	doc["gatehouse"] = map[string]any{"requested_by": "mallory", "run": map[string]any{"id": "forged"}}
	in.PlanSHA256 = putJSON(t, a, doc)
	in.CostSHA256, in.Tags = "", nil
	got, err = runPolicy(t, a, in)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		`cost {"status": "none"}`,
		"plan format=1.2 changes=9 window=30",
		"run id=run-7 message=retire the legacy key requested_by=bob",
		"workspace name=ws environment=production tags=[]",
	}
	if diff := cmp.Diff(want, got.Warnings); diff != "" || got.Error != "" {
		t.Errorf("without an estimate, warnings (-want +got):\n%s\nerror: %s", diff, got.Error)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// putJSON stores a document derived in a test and returns its hash.
func putJSON(t *testing.T, a *activities.Activities, doc any) string {
	t.Helper()
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	sha, err := a.Plans.Put(data)
	if err != nil {
		t.Fatal(err)
	}
	return sha
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
	printing := config.Policy{Name: "print.rego", Source: "package gatehouse\n\nwarn contains \"printed\" if {\n\tprint(\"changes:\", count(input.resource_changes))\n}\n"}
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

// Policies written for conftest and for OPA's Terraform tutorial work as
// their authors wrote them, package renamed: the input is the plan itself.
// This fails on a Gatehouse that gives policies input.plan instead.
func TestEvaluatePolicyReadsThePlanAsTerraformPrintsIt(t *testing.T) {
	policies := policyFiles(t, "conftest_terraform", "opa_terraform_analysis", "opa_terraform_module")
	a, shas := policyActivities(t, approval.Workspace{}, policies, gkePlan, tutorialPlan)
	evaluate := func(sha string) approval.PolicyResult {
		t.Helper()
		got, err := runPolicy(t, a, activities.PolicyInput{RunID: "r", Workspace: "ws", PlanSHA256: sha})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	// conftest's policy denies changes to GKE, reading input.resource_changes.
	a.Config.Workspaces[0].Policies = policies[:2]
	got := evaluate(shas[gkePlan])
	if want := []string{
		"Terraform plan will change prohibited resources in the following namespaces: google_iam, google_container",
	}; !cmp.Equal(got.Denials, want) || got.Error != "" {
		t.Errorf("GKE plan: got denials %q, error %q; want %q", got.Denials, got.Error, want)
	}
	// OPA's module policy hands contains() the cluster's null description:
	// undefined for OPA by default, an error under Gatehouse's strict
	// built-in errors, so the run fails closed, saying where.
	a.Config.Workspaces[0].Policies = policies
	if got, want := evaluate(shas[gkePlan]).Error, `policy "testdata/policies/opa_terraform_module.rego": line 11: eval_type_error: contains: operand 1 must be string but got null`; got != want {
		t.Errorf("GKE plan: got error %q; want %q", got, want)
	}

	// The tutorial's plan scores 11, below its blast radius of 30.
	if got := evaluate(shas[tutorialPlan]); len(got.Denials) != 0 || got.Error != "" {
		t.Errorf("tutorial plan: got denials %q, error %q; want none", got.Denials, got.Error)
	}

	// The tutorial's larger plan adds two more autoscaling groups (its step
	// 5), scoring 31; a child module's security group open to HTTP is found
	// by walking input.planned_values.
	var doc map[string]any
	if err := json.Unmarshal([]byte(readFile(t, tutorialPlan)), &doc); err != nil {
		t.Fatal(err)
	}
	changes := doc["resource_changes"].([]any)
	for _, name := range []string{"my_asg2", "my_asg3"} {
		var asg map[string]any
		if err := json.Unmarshal([]byte(mustJSON(t, changes[0])), &asg); err != nil {
			t.Fatal(err)
		}
		asg["address"], asg["name"] = "aws_autoscaling_group."+name, name
		changes = append(changes, asg)
	}
	doc["resource_changes"] = changes
	doc["planned_values"].(map[string]any)["root_module"].(map[string]any)["child_modules"] = []any{map[string]any{
		"address": "module.http_sg",
		"resources": []any{map[string]any{
			"address": "module.http_sg.aws_security_group.this_name_prefix[0]", "type": "aws_security_group",
			"values": map[string]any{"description": "Security group with HTTP ports open for everybody"},
		}},
	}}
	want := []string{
		"No security groups should be using HTTP. Resource in violation: module.http_sg.aws_security_group.this_name_prefix[0]",
		"blast radius score 31 is not below 30, or the plan changes IAM",
	}
	if got := evaluate(putJSON(t, a, doc)); !cmp.Equal(got.Denials, want) || got.Error != "" {
		t.Errorf("larger plan: got denials %q, error %q; want %q", got.Denials, got.Error, want)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// conftest's rule names and message objects: deny_*, violation and
// violation_* deny, warn_* warns, and an object's msg is the message.
func TestEvaluatePolicyConftestRules(t *testing.T) {
	policy := config.Policy{Name: "conftest.rego", Source: `package gatehouse

deny_kms contains {"msg": sprintf("%s: no KMS deletes", [rc.address]), "details": {"type": rc.type}} if {
	some rc in input.resource_changes
	rc.type == "aws_kms_key"
	"delete" in rc.change.actions
}

violation contains {"msg": "a violation", "details": {}} if true

violation_iam_admin contains "an IAM violation" if {
	some rc in input.resource_changes
	startswith(rc.type, "aws_iam_")
}

warn_replaces contains {"msg": sprintf("%d replaces", [count(replaced)])} if count(replaced) > 0

warn contains "a plain warning" if true

replaced := [rc | some rc in input.resource_changes; "delete" in rc.change.actions; "create" in rc.change.actions]

# Not read: the policy's own helpers, whatever their names look like.
denylist contains "always" if true

warning contains "never read" if true
`}
	a, shas := policyActivities(t, approval.Workspace{}, []config.Policy{policy}, securityPlan)
	got, err := runPolicy(t, a, activities.PolicyInput{RunID: "r", Workspace: "ws", PlanSHA256: shas[securityPlan]})
	if err != nil {
		t.Fatal(err)
	}
	want := approval.PolicyResult{
		Policies:   []string{"conftest.rego"},
		Denials:    []string{"a violation", "an IAM violation", "aws_kms_key.legacy: no KMS deletes"},
		Warnings:   []string{"3 replaces", "a plain warning"},
		PlanSHA256: shas[securityPlan],
	}
	if diff := cmp.Diff(want, got, ignoreTime); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

// Each file is evaluated on its own: a rule of one is invisible to another,
// and two files may define the same helper differently.
func TestEvaluatePolicyEachFileOnItsOwn(t *testing.T) {
	a := config.Policy{Name: "a.rego", Source: `package gatehouse

flagged := true

limit := 1

warn contains sprintf("a sees flagged, limit %d", [limit]) if flagged
`}
	b := config.Policy{Name: "b.rego", Source: `package gatehouse

limit := 2

deny contains "b sees a's flagged" if data.gatehouse.flagged

warn contains sprintf("b has limit %d", [limit])
`}
	acts, shas := policyActivities(t, approval.Workspace{}, []config.Policy{a, b}, networkPlan)
	got, err := runPolicy(t, acts, activities.PolicyInput{RunID: "r", Workspace: "ws", PlanSHA256: shas[networkPlan]})
	if err != nil {
		t.Fatal(err)
	}
	want := approval.PolicyResult{
		Policies:   []string{"a.rego", "b.rego"},
		Warnings:   []string{"a sees flagged, limit 1", "b has limit 2"},
		PlanSHA256: shas[networkPlan],
	}
	if diff := cmp.Diff(want, got, ignoreTime); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
}

// A worker prepares each policy once per config version, not on every
// evaluation; concurrent evaluations share the prepared queries.
func TestEvaluatePolicyPreparesOncePerConfigVersion(t *testing.T) {
	a, shas := policyActivities(t, approval.Workspace{}, policyFiles(t, "deny", "warn"), securityPlan)
	a.Config.Version = "v1"
	core, logs := observer.New(zapcore.DebugLevel)
	a.Logger = zap.New(core)
	in := activities.PolicyInput{RunID: "r", Workspace: "ws", PlanSHA256: shas[securityPlan]}
	evaluate := func() {
		t.Helper()
		got, err := runPolicy(t, a, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Denials) != 1 || len(got.Warnings) != 3 || got.Error != "" {
			t.Errorf("got %+v; want the KMS denial and 3 warnings", got)
		}
	}
	prepared := func() []string {
		var out []string
		for _, e := range logs.FilterMessage("policy prepared").All() {
			out = append(out, e.ContextMap()["config_version"].(string)+" "+e.ContextMap()["policy"].(string))
		}
		return out
	}

	evaluate()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(evaluate)
	}
	wg.Wait()
	evaluate()
	want := []string{"v1 " + policyName("deny"), "v1 " + policyName("warn")}
	if diff := cmp.Diff(want, prepared()); diff != "" {
		t.Errorf("preparations after 6 evaluations (-want +got):\n%s", diff)
	}

	// A new config version prepares again, once.
	a.Config.Version = "v2"
	evaluate()
	evaluate()
	want = append(want, "v2 "+policyName("deny"), "v2 "+policyName("warn"))
	if diff := cmp.Diff(want, prepared()); diff != "" {
		t.Errorf("preparations after a new version (-want +got):\n%s", diff)
	}
}

// input.gatehouse.cost says whether there is an estimate: a policy can fail
// closed when there is none, or when Infracost could not price the plan.
func TestEvaluatePolicyCostStatus(t *testing.T) {
	policy := config.Policy{Name: "cost.rego", Source: `package gatehouse

cost := input.gatehouse.cost

deny contains sprintf("no usable cost estimate (status %s, %d problems, estimate version %v)", [
	cost.status, count(object.get(cost, "problems", [])), object.get(cost, ["estimate", "version"], "-"),
]) if cost.status != "ok"

warn contains sprintf("%v %s a month, %v before, %v more", [
	cost.monthly_cost, cost.currency, cost.past_monthly_cost, cost.monthly_cost_delta,
]) if cost.status == "ok"
`}
	a, shas := policyActivities(t, approval.Workspace{}, []config.Policy{policy}, networkPlan, expensiveCost)
	// Infracost leaves the totals null when it could not price the plan.
	var failed map[string]any
	if err := json.Unmarshal([]byte(readFile(t, expensiveCost)), &failed); err != nil {
		t.Fatal(err)
	}
	failed["totalMonthlyCost"], failed["diffTotalMonthlyCost"] = nil, nil
	failedSHA := putJSON(t, a, failed)

	tests := []struct {
		name, cost      string
		denial, warning string
	}{
		{"none", "", "no usable cost estimate (status none, 0 problems, estimate version -)", ""},
		{"failed", failedSHA, "no usable cost estimate (status failed, 1 problems, estimate version 0.2)", ""},
		{"ok", shas[expensiveCost], "", "1158.13 USD a month, 34.368 before, 1123.762 more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runPolicy(t, a, activities.PolicyInput{RunID: "r", Workspace: "ws", PlanSHA256: shas[networkPlan], CostSHA256: tt.cost})
			if err != nil {
				t.Fatal(err)
			}
			if got.Error != "" || strings.Join(got.Denials, "|") != tt.denial || strings.Join(got.Warnings, "|") != tt.warning {
				t.Errorf("got denials %q, warnings %q, error %q; want denial %q, warning %q", got.Denials, got.Warnings, got.Error, tt.denial, tt.warning)
			}
		})
	}
}

// A message never carries a value the plan marks sensitive (OpenTofu's
// fixture: the ami "boop", in the change, the output and the variable).
func TestEvaluatePolicyRedactsSensitiveValues(t *testing.T) {
	policy := config.Policy{Name: "leaky.rego", Source: `package gatehouse

deny contains sprintf("%s: ami %s is not approved", [rc.address, rc.change.after.ami]) if {
	some rc in input.resource_changes
}

deny_object contains {"msg": sprintf("after: %v", [rc.change.after])} if {
	some rc in input.resource_changes
}

warn contains sprintf("output test will be %s; variable test_var is %s", [
	input.output_changes.test.after, input.variables.test_var.value,
])

warn contains sprintf("port %v, not 15432 nor 5432.5", [rc.change.after.port]) if {
	some rc in input.resource_changes
	rc.change.after.port
}

require_approval contains {"name": sprintf("ami-%s", [rc.change.after.ami]), "approvers": {"groups": ["security"]}} if {
	some rc in input.resource_changes
	print("checking", rc.change.after.ami)
}
`}
	a, shas := policyActivities(t, approval.Workspace{}, []config.Policy{policy}, sensitivePlan)
	core, logs := observer.New(zapcore.InfoLevel)
	a.Logger = zap.New(core)
	got, err := runPolicy(t, a, activities.PolicyInput{RunID: "r", Workspace: "ws", PlanSHA256: shas[sensitivePlan]})
	if err != nil {
		t.Fatal(err)
	}
	want := approval.PolicyResult{
		Policies: []string{"leaky.rego"},
		Denials: []string{
			`after: {"ami": "(sensitive)"}`,
			"test_instance.test: ami (sensitive) is not approved",
		},
		Warnings: []string{"output test will be (sensitive); variable test_var is (sensitive)"},
		Requirements: []approval.PolicyRequirement{
			{Name: "ami-(sensitive)", Approvers: approval.Approvers{Groups: []string{"security"}}, MinApprovals: 1, Policy: "leaky.rego"},
		},
		PlanSHA256: shas[sensitivePlan],
	}
	if diff := cmp.Diff(want, got, ignoreTime); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	for _, e := range logs.FilterMessage("policy print").All() {
		if out := e.ContextMap()["output"]; out != "checking (sensitive)" {
			t.Errorf("print logged %q; want %q", out, "checking (sensitive)")
		}
	}

	// A sensitive number is hidden where it stands alone, not inside
	// another number; an error message is redacted too.
	var doc map[string]any
	if err := json.Unmarshal([]byte(readFile(t, sensitivePlan)), &doc); err != nil {
		t.Fatal(err)
	}
	change := doc["resource_changes"].([]any)[0].(map[string]any)["change"].(map[string]any)
	change["after"].(map[string]any)["port"] = json.Number("5432")
	change["after_sensitive"].(map[string]any)["port"] = true
	got, err = runPolicy(t, a, activities.PolicyInput{RunID: "r", Workspace: "ws", PlanSHA256: putJSON(t, a, doc)})
	if err != nil {
		t.Fatal(err)
	}
	if w := "port (sensitive), not 15432 nor 5432.5"; !slices.Contains(got.Warnings, w) {
		t.Errorf("got warnings %q; want %q among them", got.Warnings, w)
	}

	failing := config.Policy{Name: "failing.rego", Source: "package gatehouse\n\nwarn contains \"x\" if {\n\tsome rc in input.resource_changes\n\tto_number(rc.change.after.ami) > 1\n}\n"}
	a.Config.Workspaces[0].Policies = []config.Policy{failing}
	got, err = runPolicy(t, a, activities.PolicyInput{RunID: "r", Workspace: "ws", PlanSHA256: shas[sensitivePlan]})
	if err != nil {
		t.Fatal(err)
	}
	if want := `policy "failing.rego": line 5: eval_builtin_error: to_number: strconv.ParseFloat: parsing "(sensitive)": invalid syntax`; got.Error != want {
		t.Errorf("got error %q; want %q", got.Error, want)
	}
}

// Two policies asking for one approval differently cannot both be met by
// approving it: the run fails closed, naming both.
func TestEvaluatePolicyConflictingRequirements(t *testing.T) {
	policies := []config.Policy{
		{Name: "a.rego", Source: "package gatehouse\n\nrequire_approval contains {\"name\": \"security\", \"approvers\": {\"groups\": [\"security\"]}} if true\n"},
		{Name: "b.rego", Source: "package gatehouse\n\nrequire_approval contains {\"name\": \"security\", \"approvers\": {\"groups\": [\"security\"]}, \"min_approvals\": 2} if true\n"},
	}
	a, shas := policyActivities(t, approval.Workspace{}, policies, networkPlan)
	got, err := runPolicy(t, a, activities.PolicyInput{RunID: "r", Workspace: "ws", PlanSHA256: shas[networkPlan]})
	if err != nil {
		t.Fatal(err)
	}
	if want := `policies "a.rego" and "b.rego" both ask for approval "security", differently`; got.Error != want || got.Requirements != nil {
		t.Errorf("got error %q, requirements %+v; want error %q and none", got.Error, got.Requirements, want)
	}
}
