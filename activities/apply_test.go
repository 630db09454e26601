package activities_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap/zaptest"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/plan"
)

// newActivities returns activities whose config has one workspace applying
// with script (or none when script is ""), and a store holding one plan.
func newActivities(t *testing.T, script string) (*activities.Activities, string) {
	t.Helper()
	dir := t.TempDir()
	yaml := "workspaces:\n  - name: ws\n"
	if script != "" {
		path := filepath.Join(dir, "apply.sh")
		if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
			t.Fatal(err)
		}
		yaml += "    apply: {command: [\"" + path + "\", \"--flag\"], dir: \"" + dir + "\"}\n"
	}
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	store, err := plan.NewStore(filepath.Join(dir, "plans"))
	if err != nil {
		t.Fatal(err)
	}
	sha, err := store.Put([]byte(`{"format_version":"1.2"}`))
	if err != nil {
		t.Fatal(err)
	}
	return &activities.Activities{Config: cfg, Plans: store, Logger: zaptest.NewLogger(t)}, sha
}

func runApply(t *testing.T, a *activities.Activities, in activities.ApplyInput) (approval.ApplyResult, error) {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	v, err := env.ExecuteActivity(a.Apply, in)
	if err != nil {
		return approval.ApplyResult{}, err
	}
	var res approval.ApplyResult
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	return res, nil
}

func TestApplyRunsTheCommandWithThePlan(t *testing.T) {
	a, sha := newActivities(t, `#!/bin/sh
echo "args=$* run=$GATEHOUSE_RUN_ID ws=$GATEHOUSE_WORKSPACE sha=$GATEHOUSE_PLAN_SHA256 pwd=$(pwd)"
sha256sum "$GATEHOUSE_PLAN_FILE"
`)
	res, err := runApply(t, a, activities.ApplyInput{RunID: "run-1", Workspace: "ws", PlanSHA256: sha})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Executed || res.ExitCode != 0 || res.Error != "" {
		t.Fatalf("result %+v; want a successful execution", res)
	}
	for _, want := range []string{"args=--flag", "run=run-1", "ws=ws", "sha=" + sha, sha + "  "} {
		if !strings.Contains(res.Output, want) {
			t.Errorf("output %q lacks %q", res.Output, want)
		}
	}
}

func TestApplyReportsAFailingCommand(t *testing.T) {
	a, sha := newActivities(t, "#!/bin/sh\necho boom >&2\nexit 3\n")
	res, err := runApply(t, a, activities.ApplyInput{RunID: "r", Workspace: "ws", PlanSHA256: sha})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Executed || res.ExitCode != 3 || !strings.Contains(res.Output, "boom") || res.Error == "" {
		t.Errorf("result %+v; want exit 3 with its output and an error", res)
	}
}

func TestApplyWithoutCommandExecutesNothing(t *testing.T) {
	a, sha := newActivities(t, "")
	res, err := runApply(t, a, activities.ApplyInput{RunID: "r", Workspace: "ws", PlanSHA256: sha})
	if err != nil {
		t.Fatal(err)
	}
	if res.Executed || !strings.Contains(res.Output, "nothing was executed") {
		t.Errorf("result %+v; want executed=false saying nothing ran", res)
	}
}

func TestApplyRefusesAMissingOrAlteredPlan(t *testing.T) {
	a, sha := newActivities(t, "#!/bin/sh\nexit 0\n")
	if _, err := runApply(t, a, activities.ApplyInput{RunID: "r", Workspace: "ws", PlanSHA256: strings.Repeat("a", 64)}); err == nil || !strings.Contains(err.Error(), "plan not found") {
		t.Errorf("missing plan: %v; want a plan-not-found error", err)
	}
	if err := os.WriteFile(a.Plans.Path(sha), []byte(`{"format_version":"1.2","x":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runApply(t, a, activities.ApplyInput{RunID: "r", Workspace: "ws", PlanSHA256: sha}); err == nil || !strings.Contains(err.Error(), "altered") {
		t.Errorf("altered plan: %v; want refused", err)
	}
	if _, err := runApply(t, a, activities.ApplyInput{RunID: "r", Workspace: "nope", PlanSHA256: sha}); err == nil {
		t.Error("unknown workspace applied")
	}
}
