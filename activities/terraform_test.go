package activities_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap/zaptest"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/internal/tofutest"
	"github.com/gatehouse-dev/gatehouse/plan"
)

// twoResources is a configuration of two terraform_data resources named
// after a variable, which OpenTofu plans and applies offline.
const twoResources = `variable "name" { type = string }
resource "terraform_data" "a" { input = var.name }
resource "terraform_data" "b" { input = "b-${var.name}" }
`

// tfFixture is a worker with one terraform workspace "net" and its data.
type tfFixture struct {
	acts *activities.Activities
	// dir is the workspace's directory (a dir workspace).
	dir string
}

// newTerraform returns activities whose one workspace "net" plans dir
// (a fresh directory holding files) with the real OpenTofu, or the block
// the given YAML lines make when block is not empty (with the real OpenTofu
// unless it names a binary). Its rule asks the
// platform group about every plan that adds something.
func newTerraform(t *testing.T, files map[string]string, block ...string) tfFixture {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "ws")
	writeFiles(t, dir, files)
	if len(block) == 0 {
		block = []string{`dir: "` + dir + `"`, `vars: {name: x}`}
	}
	yaml := `users:
  - {id: alice, email: alice@example.com, groups: [platform], roles: [approver], token: dev-alice}
  - {id: bob, email: bob@example.com, groups: [platform], roles: [approver], token: dev-bob}
workspaces:
  - name: net
    rules:
      - name: creates-need-one
        when: {adds_gt: 0}
        approvers: {groups: [platform]}
        min_approvals: 1
    terraform:
`
	if !slices.ContainsFunc(block, func(l string) bool { return strings.HasPrefix(l, "binary:") }) {
		yaml += `      binary: "` + tofutest.Binary(t) + `"` + "\n"
	}
	for _, l := range block {
		yaml += "      " + l + "\n"
	}
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	store, err := plan.NewStore(filepath.Join(root, "data", "plans"))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := activities.NewClaimStore(filepath.Join(root, "data", "claims"))
	if err != nil {
		t.Fatal(err)
	}
	return tfFixture{
		acts: &activities.Activities{
			Config: cfg, Plans: store, Claims: claims, Logger: zaptest.NewLogger(t),
			Work: filepath.Join(root, "data", "work"),
		},
		dir: dir,
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runPlan runs the Plan activity on the SDK's test activity environment.
func runPlan(t *testing.T, a *activities.Activities, in activities.PlanInput) (activities.PlanOutcome, error) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	if in.Workspace == "" {
		in.Workspace = "net"
	}
	if in.Round == 0 {
		in.Round = 1
	}
	in.RequestedBy = approval.Identity{ID: "alice"}
	v, err := env.ExecuteActivity(a.Plan, in)
	if err != nil {
		return activities.PlanOutcome{}, err
	}
	var out activities.PlanOutcome
	if err := v.Get(&out); err != nil {
		t.Fatal(err)
	}
	return out, nil
}

// mustPlan plans and wants the given result.
func mustPlan(t *testing.T, f tfFixture, in activities.PlanInput, want string) activities.PlanOutcome {
	t.Helper()
	start := time.Now()
	out, err := runPlan(t, f.acts, in)
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	if out.Result != want {
		t.Fatalf("plan result %q (error %q); want %q", out.Result, out.Error, want)
	}
	t.Logf("plan %s: %s in %v", in.RunID, out.Result, time.Since(start).Round(time.Millisecond))
	return out
}

// applyInput is the apply of what out planned, for run.
func applyInput(run string, out activities.PlanOutcome) activities.ApplyInput {
	return activities.ApplyInput{
		RunID: run, Workspace: "net", PlanSHA256: out.Plan.SHA256,
		PlanFileSHA256: out.Origin.PlanFileSHA256, Commit: out.Origin.Commit,
	}
}

// mustApply applies and wants Terraform to have succeeded.
func mustApply(t *testing.T, f tfFixture, in activities.ApplyInput) approval.ApplyResult {
	t.Helper()
	start := time.Now()
	res, err := runApply(t, f.acts, in)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if !res.Executed || res.ExitCode != 0 || res.Error != "" {
		t.Fatalf("apply %+v; want success\n%s", res, artifact(t, f, res.LogSHA256))
	}
	t.Logf("apply %s in %v", in.RunID, time.Since(start).Round(time.Millisecond))
	return res
}

// artifact returns a stored artifact, verified against its hash.
func artifact(t *testing.T, f tfFixture, sha string) string {
	t.Helper()
	if sha == "" {
		t.Fatal("no artifact")
	}
	data, err := f.acts.Plans.Get(sha)
	if err != nil {
		t.Fatalf("artifact %s: %v", sha, err)
	}
	return string(data)
}

// stateResources returns the addresses of the resources in a local state
// file ("" when there is none).
func stateResources(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var state struct {
		Resources []struct {
			Type, Name string
		} `json:"resources"`
	}
	if err := json.Unmarshal(data, &state); err != nil {
		t.Fatalf("state %s: %v", path, err)
	}
	var out []string
	for _, r := range state.Resources {
		out = append(out, r.Type+"."+r.Name)
	}
	return out
}

func TestTerraformPlanApplyThenNoChanges(t *testing.T) {
	f := newTerraform(t, map[string]string{"main.tf": twoResources})
	out := mustPlan(t, f, activities.PlanInput{RunID: "run-1"}, activities.PlanPlanned)
	if out.Plan.Adds != 2 || out.Plan.ResourceCount != 2 || out.Plan.Destroys != 0 {
		t.Errorf("plan summary %+v; want 2 adds of 2 resources", out.Plan)
	}
	if len(out.Reasons) != 1 || out.Reasons[0].Name != "creates-need-one" {
		t.Errorf("reasons %+v; want creates-need-one", out.Reasons)
	}
	if !strings.HasPrefix(out.Origin.Binary, "tofu 1.") || out.Origin.Commit != "" || out.Error != "" {
		t.Errorf("origin %+v, error %q; want tofu's version and no commit", out.Origin, out.Error)
	}
	// Both plans are stored under their hashes; the JSON is the one the
	// summary describes.
	shown := artifact(t, f, out.Plan.SHA256)
	if parsed, err := plan.Parse([]byte(shown)); err != nil || parsed.SHA256 != out.Plan.SHA256 {
		t.Errorf("stored JSON plan parses to %v, %v; want the summary's hash", parsed.SHA256, err)
	}
	if binary := artifact(t, f, out.Origin.PlanFileSHA256); !strings.HasPrefix(binary, "PK") {
		t.Errorf("stored binary plan starts %q; want a plan file (zip)", binary[:min(len(binary), 8)])
	}
	log := artifact(t, f, out.Origin.PlanLogSHA256)
	for _, want := range []string{"$ tofu init -input=false -no-color", "-var name=…", "Plan: 2 to add"} {
		if !strings.Contains(log, want) {
			t.Errorf("plan log lacks %q:\n%s", want, log)
		}
	}

	res := mustApply(t, f, applyInput("run-1", out))
	if got := stateResources(t, filepath.Join(f.dir, "terraform.tfstate")); strings.Join(got, ",") != "terraform_data.a,terraform_data.b" {
		t.Errorf("state holds %v; want terraform_data.a and .b", got)
	}
	if log := artifact(t, f, res.LogSHA256); !strings.Contains(log, "Apply complete! Resources: 2 added") {
		t.Errorf("apply log lacks Apply complete:\n%s", log)
	}
	if res.StalePlan || len(res.Command) == 0 || !strings.HasSuffix(res.Command[len(res.Command)-1], ".tfplan") {
		t.Errorf("apply result %+v; want the plan file's apply, not stale", res)
	}

	again := mustPlan(t, f, activities.PlanInput{RunID: "run-2"}, activities.PlanNoChanges)
	if again.Origin.PlanFileSHA256 != "" || again.Plan.SHA256 != "" || again.Origin.PlanLogSHA256 == "" {
		t.Errorf("no-change outcome %+v; want only a log stored", again)
	}
}

func TestTerraformPlanFailsWithTheTailOfItsOutput(t *testing.T) {
	f := newTerraform(t, map[string]string{"main.tf": `resource "terraform_data" "a" {` + "\n"})
	out := mustPlan(t, f, activities.PlanInput{RunID: "run-1"}, activities.PlanFailed)
	first, rest, _ := strings.Cut(out.Error, "\n")
	if !strings.HasPrefix(first, "tofu init exited with code 1") || !strings.Contains(rest, "Error: ") {
		t.Errorf("error %q; want the failing command, then tofu's error", out.Error)
	}
	if lines := strings.Count(out.Error, "\n"); lines > 41 {
		t.Errorf("error has %d lines; want the tail of ~40", lines)
	}
	if out.Origin.PlanLogSHA256 == "" || out.Origin.PlanFileSHA256 != "" || out.Plan.SHA256 != "" {
		t.Errorf("origin %+v plan %+v; want a log and no plan", out.Origin, out.Plan)
	}
}

func TestTerraformApplyRefusesATamperedPlan(t *testing.T) {
	f := newTerraform(t, map[string]string{"main.tf": twoResources})
	out := mustPlan(t, f, activities.PlanInput{RunID: "run-1"}, activities.PlanPlanned)
	path := f.acts.Plans.Path(out.Origin.PlanFileSHA256)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = runApply(t, f.acts, applyInput("run-1", out))
	if !isAppError(err, activities.ErrPlanUnavailable) || !strings.Contains(err.Error(), "altered") {
		t.Errorf("apply of a tampered plan: %v; want PlanUnavailable: altered", err)
	}
	missing := applyInput("run-1", out)
	missing.PlanFileSHA256 = ""
	if _, err := runApply(t, f.acts, missing); !isAppError(err, activities.ErrPlanUnavailable) {
		t.Errorf("apply without a binary plan: %v; want PlanUnavailable", err)
	}
	if got := stateResources(t, filepath.Join(f.dir, "terraform.tfstate")); got != nil {
		t.Errorf("state holds %v; want nothing applied", got)
	}
	if _, err := f.acts.Claims.Get("run-1", out.Plan.SHA256); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("claim after refused applies: %v; want none", err)
	}
}

func TestTerraformApplyReportsAStalePlan(t *testing.T) {
	f := newTerraform(t, map[string]string{"main.tf": twoResources})
	first := mustPlan(t, f, activities.PlanInput{RunID: "run-1"}, activities.PlanPlanned)
	second := mustPlan(t, f, activities.PlanInput{RunID: "run-2"}, activities.PlanPlanned)
	mustApply(t, f, applyInput("run-2", second))
	statePath := filepath.Join(f.dir, "terraform.tfstate")
	before, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}

	res, err := runApply(t, f.acts, applyInput("run-1", first))
	if err != nil {
		t.Fatal(err)
	}
	if !res.StalePlan || !res.Executed || res.ExitCode == 0 || !strings.Contains(res.Error, "stale") {
		t.Errorf("apply of a stale plan %+v; want StalePlan with an error", res)
	}
	if log := artifact(t, f, res.LogSHA256); !strings.Contains(log, "Saved plan is stale") {
		t.Errorf("apply log lacks tofu's stale-plan error:\n%s", log)
	}
	if after, err := os.ReadFile(statePath); err != nil || !bytes.Equal(after, before) {
		t.Errorf("state changed by a stale apply (%v); want nothing applied", err)
	}
}

// The worker's own environment never reaches tofu: a broken CLI config
// named by TF_CLI_CONFIG_FILE would break show -json, and a TF_VAR_ would
// set a variable the workspace does not.
func TestTerraformIgnoresTheWorkersEnvironment(t *testing.T) {
	broken := filepath.Join(t.TempDir(), "broken.tfrc")
	if err := os.WriteFile(broken, []byte("this is { not HCL"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TF_CLI_CONFIG_FILE", broken)
	t.Setenv("TF_VAR_leak", "leaked")
	f := newTerraform(t, map[string]string{"main.tf": twoResources + `variable "leak" {
  type    = string
  default = "none"
}
resource "terraform_data" "leak" { input = var.leak }
`})
	out := mustPlan(t, f, activities.PlanInput{RunID: "run-1"}, activities.PlanPlanned)
	var shown struct {
		Variables map[string]struct{ Value string } `json:"variables"`
	}
	if err := json.Unmarshal([]byte(artifact(t, f, out.Plan.SHA256)), &shown); err != nil {
		t.Fatal(err)
	}
	if got := shown.Variables["leak"].Value; got != "none" {
		t.Errorf("var.leak = %q; want the default: the worker's TF_VAR_leak must not reach tofu", got)
	}
	mustApply(t, f, applyInput("run-1", out))
}

// A variable the workspace lists in env_from reaches tofu, and its value is
// redacted from the logs.
func TestTerraformRedactsEnvFromValues(t *testing.T) {
	const secret = "s3cr3t-Value-42"
	t.Setenv("TF_VAR_token", secret)
	dir := filepath.Join(t.TempDir(), "ws")
	writeFiles(t, dir, map[string]string{"main.tf": `variable "token" { type = string }
resource "terraform_data" "t" { input = var.token }
output "token" { value = var.token }
`})
	f := newTerraform(t, nil, `dir: "`+dir+`"`, `env_from: [TF_VAR_token]`)
	f.dir = dir
	out := mustPlan(t, f, activities.PlanInput{RunID: "run-1"}, activities.PlanPlanned)
	if !strings.Contains(artifact(t, f, out.Plan.SHA256), secret) {
		t.Fatal("the plan does not hold TF_VAR_token's value: env_from did not reach tofu")
	}
	res := mustApply(t, f, applyInput("run-1", out))
	for name, sha := range map[string]string{"plan": out.Origin.PlanLogSHA256, "apply": res.LogSHA256} {
		log := artifact(t, f, sha)
		if strings.Contains(log, secret) || !strings.Contains(log, "[redacted]") {
			t.Errorf("%s log shows the secret or no redaction:\n%s", name, log)
		}
	}
}

// git runs git in dir with a fixed identity.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=Test", "-c", "user.email=test@example.com"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestTerraformGitWorkspace(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	tofutest.Binary(t) // skip before building the repository
	tmp := t.TempDir()
	bare := filepath.Join(tmp, "infra.git")
	git(t, tmp, "init", "--quiet", "--bare", "--initial-branch=main", bare)
	clone := filepath.Join(tmp, "clone")
	git(t, tmp, "clone", "--quiet", bare, clone)
	// The checkout is gone after each plan and apply: the state lives
	// outside it, as a real workspace's lives in a backend.
	state := filepath.Join(tmp, "state", "terraform.tfstate")
	writeFiles(t, filepath.Join(clone, "infra", "net"), map[string]string{"main.tf": `terraform {
  backend "local" { path = "` + state + `" }
}
` + twoResources})
	git(t, clone, "add", ".")
	git(t, clone, "commit", "--quiet", "-m", "network")
	git(t, clone, "push", "--quiet", "origin", "HEAD:main")
	planned := git(t, clone, "rev-parse", "HEAD")

	f := newTerraform(t, nil, `git: {url: "file://`+bare+`", path: infra/net}`, `vars: {name: x}`)
	out := mustPlan(t, f, activities.PlanInput{RunID: "run-1"}, activities.PlanPlanned)
	if out.Origin.Commit != planned || out.Origin.Ref != "main" || out.Plan.Adds != 2 {
		t.Errorf("origin %+v, %d adds; want commit %s of main, 2 adds", out.Origin, out.Plan.Adds, planned)
	}

	// A later commit does not change what the apply checks out.
	writeFiles(t, filepath.Join(clone, "infra", "net"), map[string]string{"extra.tf": `resource "terraform_data" "c" { input = "c" }`})
	git(t, clone, "add", ".")
	git(t, clone, "commit", "--quiet", "-m", "more")
	git(t, clone, "push", "--quiet", "origin", "HEAD:main")
	res := mustApply(t, f, applyInput("run-1", out))
	if log := artifact(t, f, res.LogSHA256); !strings.Contains(log, "checkout --quiet --detach "+planned) {
		t.Errorf("apply log does not check out %s:\n%s", planned, log)
	}
	if got := stateResources(t, state); strings.Join(got, ",") != "terraform_data.a,terraform_data.b" {
		t.Errorf("state holds %v; want terraform_data.a and .b", got)
	}

	// A re-plan of the planned commit plans it, not main's newest.
	replan := mustPlan(t, f, activities.PlanInput{RunID: "run-1", Round: 2, Commit: planned}, activities.PlanNoChanges)
	if replan.Origin.Commit != planned {
		t.Errorf("re-plan checked out %s; want %s", replan.Origin.Commit, planned)
	}
	latest := mustPlan(t, f, activities.PlanInput{RunID: "run-2"}, activities.PlanPlanned)
	if latest.Origin.Commit == planned || latest.Plan.Adds != 1 {
		t.Errorf("plan of main: commit %s, %d adds; want the newer commit adding c", latest.Origin.Commit, latest.Plan.Adds)
	}

	for _, ref := range []string{"--upload-pack=touch /tmp/x", "main..HEAD", "nope"} {
		bad := mustPlan(t, f, activities.PlanInput{RunID: "run-3", Ref: ref}, activities.PlanFailed)
		if !strings.Contains(bad.Error, "ref") {
			t.Errorf("plan of ref %q: %q; want it refused as a ref", ref, bad.Error)
		}
	}
}

// A directory workspace has no refs: a run that asks for one fails instead
// of planning whatever the directory holds.
func TestTerraformDirWorkspaceRefusesARef(t *testing.T) {
	binary, dir := fakeTerraform(t, "", `{}`)
	f := newTerraform(t, nil, `binary: "`+binary+`"`, `dir: "`+dir+`"`)
	out := mustPlan(t, f, activities.PlanInput{RunID: "run-1", Ref: "feature"}, activities.PlanFailed)
	if !strings.Contains(out.Error, "no ref or commit to check out") {
		t.Errorf("error %q; want the ref refused", out.Error)
	}
}

func TestTerraformPlanRefusesOtherWorkspaces(t *testing.T) {
	f := newActivities(t, "#!/bin/sh\nexit 0\n")
	for _, ws := range []string{"ws", "nope"} {
		_, err := runPlan(t, f.acts, activities.PlanInput{RunID: "r", Workspace: ws})
		if !isAppError(err, activities.ErrWorkspaceUnknown) {
			t.Errorf("plan of %s: %v; want WorkspaceUnknown", ws, err)
		}
	}
}

// fakeTerraform writes a script named terraform that behaves as the binary
// does for Gatehouse's commands: version -json, init (recording its
// environment in env.txt), plan -detailed-exitcode (running planBody, then
// writing the plan file and exiting 2) and show -json (printing shown).
func fakeTerraform(t *testing.T, planBody, shown string) (binary, dir string) {
	t.Helper()
	dir = t.TempDir()
	binary = writeScript(t, dir, "terraform", `#!/bin/sh
case "$1" in
version) echo '{"terraform_version":"1.9.8","platform":"linux_amd64"}' ;;
init) env > env.txt; echo "Terraform has been successfully initialized!" ;;
plan)
	for a in "$@"; do case "$a" in -out=*) out="${a#-out=}" ;; esac; done
	`+planBody+`
	echo binary-plan > "$out"; exit 2 ;;
show) cat <<'JSON'
`+shown+`
JSON
;;
esac
`)
	return binary, dir
}

// A plan Gatehouse cannot classify is a failed plan, never one nobody is
// asked about (fail closed).
func TestTerraformPlanRefusesAnUnreadablePlan(t *testing.T) {
	binary, dir := fakeTerraform(t, "", `{"format_version":"1.2","resource_changes":[
  {"address":"aws_iam_role.x","mode":"managed","type":"aws_iam_role","name":"x","provider_name":"aws",
   "change":{"actions":["update","delete"],"before":{},"after":{}}}]}`)
	f := newTerraform(t, nil, `binary: "`+binary+`"`, `dir: "`+dir+`"`)
	out := mustPlan(t, f, activities.PlanInput{RunID: "run-1"}, activities.PlanFailed)
	if !strings.HasPrefix(out.Error, "the plan cannot be read: ") || !strings.Contains(out.Error, `cannot classify actions ["update","delete"]`) {
		t.Errorf("error %q; want the parser's refusal", out.Error)
	}
	if out.Origin.Binary != "terraform 1.9.8" || out.Origin.PlanFileSHA256 != "" || len(out.Reasons) != 0 {
		t.Errorf("outcome %+v; want terraform's version and nothing stored", out)
	}
}

// What the binary sees of the environment is Gatehouse's allow-list and the
// workspace's env_from, nothing else of the worker's.
func TestTerraformEnvironmentIsAnAllowList(t *testing.T) {
	t.Setenv("AWS_PROFILE", "dev")
	t.Setenv("GATEHOUSE_SIGNING_KEYS", "k1:secret")
	t.Setenv("SOME_TOKEN", "tok")
	binary, dir := fakeTerraform(t, "", `{"format_version":"1.2","resource_changes":[]}`)
	f := newTerraform(t, nil, `binary: "`+binary+`"`, `dir: "`+dir+`"`, `env_from: [AWS_PROFILE]`)
	mustPlan(t, f, activities.PlanInput{RunID: "run-1"}, activities.PlanPlanned)
	data, err := os.ReadFile(filepath.Join(dir, "env.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	env := map[string]string{}
	for line := range strings.Lines(string(data)) {
		name, value, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch name {
		case "PWD", "OLDPWD", "SHLVL", "_": // the shell's own
			continue
		}
		names = append(names, name)
		env[name] = value
	}
	slices.Sort(names)
	want := []string{"AWS_PROFILE", "GIT_CONFIG_NOSYSTEM", "GIT_TERMINAL_PROMPT", "HOME", "PATH", "TF_CLI_CONFIG_FILE",
		"TF_DATA_DIR", "TF_INPUT", "TF_IN_AUTOMATION", "TF_PLUGIN_CACHE_DIR"}
	if !slices.Equal(names, want) {
		t.Errorf("environment %v; want %v", names, want)
	}
	work := f.acts.Work
	if env["AWS_PROFILE"] != "dev" || env["HOME"] != filepath.Join(work, "home") || env["TF_CLI_CONFIG_FILE"] != filepath.Join(work, "cli.tfrc") {
		t.Errorf("environment %v; want env_from's value and Gatehouse's own HOME and CLI config", env)
	}
	if fi, err := os.Stat(env["TF_CLI_CONFIG_FILE"]); err != nil || fi.Size() != 0 {
		t.Errorf("CLI config: %v; want an empty file", err)
	}
}

// A plan that outlives the workspace's timeout is interrupted (SIGINT to
// its process group) and fails saying so.
func TestTerraformPlanTimesOut(t *testing.T) {
	binary, dir := fakeTerraform(t, "sleep 30", `{}`)
	f := newTerraform(t, nil, `binary: "`+binary+`"`, `dir: "`+dir+`"`, `timeout: 1s`)
	start := time.Now()
	out := mustPlan(t, f, activities.PlanInput{RunID: "run-1"}, activities.PlanFailed)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("plan took %v; want it stopped after its 1s timeout", took)
	}
	if !strings.Contains(out.Error, "terraform plan exited") || !strings.Contains(out.Error, "interrupted: context deadline exceeded") {
		t.Errorf("error %q; want the plan interrupted by its timeout", out.Error)
	}
}
