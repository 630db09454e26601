package activities_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.uber.org/zap/zaptest"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/plan"
)

// fixture is a worker's view of one workspace applying with a script: its
// activities, the approved plan's hash and the directory the script runs in.
type fixture struct {
	acts *activities.Activities
	sha  string
	dir  string
}

// newActivities returns activities whose config has one workspace applying
// with script (or none when script is ""), with extra YAML lines for its
// apply section, a store holding one plan and a claim store.
func newActivities(t *testing.T, script string, applyExtra ...string) fixture {
	t.Helper()
	dir := t.TempDir()
	yaml := "workspaces:\n  - name: ws\n"
	if script != "" {
		path := writeScript(t, dir, "apply.sh", script)
		yaml += "    apply:\n      command: [\"" + path + "\", \"--flag\"]\n      dir: \"" + dir + "\"\n"
		for _, l := range applyExtra {
			yaml += "      " + l + "\n"
		}
	}
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	store, err := plan.NewStore(filepath.Join(dir, "data", "plans"))
	if err != nil {
		t.Fatal(err)
	}
	sha, err := store.Put([]byte(`{"format_version":"1.2"}`))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := activities.NewClaimStore(filepath.Join(dir, "data", "claims"))
	if err != nil {
		t.Fatal(err)
	}
	return fixture{
		acts: &activities.Activities{Config: cfg, Plans: store, Claims: claims, Logger: zaptest.NewLogger(t)},
		sha:  sha, dir: dir,
	}
}

func writeScript(t *testing.T, dir, name, script string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return path
}

// runApply runs the Apply activity on the SDK's test activity environment,
// which gives it an activity.GetInfo like a worker's.
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

// applyLog returns the log artifact the result points at.
func applyLog(t *testing.T, f fixture, res approval.ApplyResult) string {
	t.Helper()
	if res.LogSHA256 == "" {
		t.Fatalf("result %+v has no log artifact", res)
	}
	data, err := f.acts.Plans.Get(res.LogSHA256)
	if err != nil {
		t.Fatalf("log artifact: %v", err)
	}
	if int64(len(data)) != res.LogBytes {
		t.Errorf("log artifact is %d bytes; result says %d", len(data), res.LogBytes)
	}
	return string(data)
}

func TestApplyRunsTheCommandWithThePlan(t *testing.T) {
	f := newActivities(t, `#!/bin/sh
echo "args=$* run=$GATEHOUSE_RUN_ID ws=$GATEHOUSE_WORKSPACE sha=$GATEHOUSE_PLAN_SHA256 pwd=$(pwd)"
sha256sum "$GATEHOUSE_PLAN_FILE"
`)
	res, err := runApply(t, f.acts, activities.ApplyInput{RunID: "run-1", Workspace: "ws", PlanSHA256: f.sha})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Executed || res.ExitCode != 0 || res.Error != "" || res.LogTruncated {
		t.Fatalf("result %+v; want a successful execution", res)
	}
	out := applyLog(t, f, res)
	for _, want := range []string{"args=--flag", "run=run-1", "ws=ws", "sha=" + f.sha, f.sha + "  ", "pwd=" + f.dir} {
		if !strings.Contains(out, want) {
			t.Errorf("log %q lacks %q", out, want)
		}
	}
}

// TestApplyCommandGetsTheSubmittedBinaryPlan: a run submitted with its
// binary plan (plan -out) beside the JSON hands the command exactly that
// file as GATEHOUSE_PLAN_FILE, so `terraform apply "$GATEHOUSE_PLAN_FILE"`
// works; the JSON is GATEHOUSE_PLAN_JSON. Before, the command only ever got
// the JSON, which Terraform cannot apply.
func TestApplyCommandGetsTheSubmittedBinaryPlan(t *testing.T) {
	f := newActivities(t, `#!/bin/sh
echo "file=$(sha256sum < "$GATEHOUSE_PLAN_FILE" | cut -d' ' -f1)"
echo "json=$(sha256sum < "$GATEHOUSE_PLAN_JSON" | cut -d' ' -f1)"
`)
	binary := []byte("binary plan bytes from plan -out")
	binSHA, err := f.acts.Plans.Put(binary)
	if err != nil {
		t.Fatal(err)
	}
	res, err := runApply(t, f.acts, activities.ApplyInput{RunID: "run-bin", Workspace: "ws", PlanSHA256: f.sha, PlanFileSHA256: binSHA})
	if err != nil {
		t.Fatal(err)
	}
	out := applyLog(t, f, res)
	if !strings.Contains(out, "file="+binSHA) || !strings.Contains(out, "json="+f.sha) {
		t.Errorf("log %q; want the binary plan as GATEHOUSE_PLAN_FILE and the JSON as GATEHOUSE_PLAN_JSON", out)
	}
}

func TestApplyReportsAFailingCommand(t *testing.T) {
	f := newActivities(t, "#!/bin/sh\necho boom >&2\nexit 3\n")
	res, err := runApply(t, f.acts, activities.ApplyInput{RunID: "r", Workspace: "ws", PlanSHA256: f.sha})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Executed || res.ExitCode != 3 || res.Error == "" || !strings.Contains(applyLog(t, f, res), "boom") {
		t.Errorf("result %+v; want exit 3 with its output and an error", res)
	}
}

func TestApplyWithoutCommandExecutesNothing(t *testing.T) {
	f := newActivities(t, "")
	res, err := runApply(t, f.acts, activities.ApplyInput{RunID: "r", Workspace: "ws", PlanSHA256: f.sha})
	if err != nil {
		t.Fatal(err)
	}
	if res.Executed || res.LogSHA256 != "" || res.Error != "" {
		t.Errorf("result %+v; want executed=false and no log", res)
	}
}

func TestApplyRefusesAMissingOrAlteredPlan(t *testing.T) {
	f := newActivities(t, "#!/bin/sh\nexit 0\n")
	_, err := runApply(t, f.acts, activities.ApplyInput{RunID: "r", Workspace: "ws", PlanSHA256: strings.Repeat("a", 64)})
	if !isAppError(err, activities.ErrPlanUnavailable) || !strings.Contains(err.Error(), "plan not found") {
		t.Errorf("missing plan: %v; want PlanUnavailable: plan not found", err)
	}
	if err := os.WriteFile(f.acts.Plans.Path(f.sha), []byte(`{"format_version":"1.2","x":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runApply(t, f.acts, activities.ApplyInput{RunID: "r", Workspace: "ws", PlanSHA256: f.sha}); !isAppError(err, activities.ErrPlanUnavailable) || !strings.Contains(err.Error(), "altered") {
		t.Errorf("altered plan: %v; want PlanUnavailable: altered", err)
	}
	if _, err := runApply(t, f.acts, activities.ApplyInput{RunID: "r", Workspace: "nope", PlanSHA256: f.sha}); !isAppError(err, activities.ErrWorkspaceUnknown) {
		t.Errorf("unknown workspace: %v; want WorkspaceUnknown", err)
	}
	// Nothing ran, so nothing was claimed: a later attempt with the plan
	// restored may still apply.
	if _, err := f.acts.Claims.Get("r", f.sha); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("claim after refused applies: %v; want none", err)
	}
}

func isAppError(err error, typ string) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == typ && appErr.NonRetryable()
}

// TestApplyRunsOncePerRunAndPlan is the reset, the retry and the second
// worker: a second Apply of the same run and plan finds the first one's
// claim and never starts the command.
func TestApplyRunsOncePerRunAndPlan(t *testing.T) {
	f := newActivities(t, "#!/bin/sh\necho \"$GATEHOUSE_RUN_ID\" >> ran.log\n")
	in := activities.ApplyInput{RunID: "run-once", Workspace: "ws", PlanSHA256: f.sha}
	if res, err := runApply(t, f.acts, in); err != nil || res.ExitCode != 0 {
		t.Fatalf("first apply: %+v, %v; want success", res, err)
	}
	// A second worker sharing the data dir, as after a reset that lands
	// elsewhere.
	claims, err := activities.NewClaimStore(filepath.Join(f.dir, "data", "claims"))
	if err != nil {
		t.Fatal(err)
	}
	second := &activities.Activities{Config: f.acts.Config, Plans: f.acts.Plans, Claims: claims, Logger: f.acts.Logger}
	for _, a := range []*activities.Activities{f.acts, second} {
		_, err := runApply(t, a, in)
		if !isAppError(err, activities.ErrApplyOutcomeUnknown) {
			t.Fatalf("second apply: %v; want a non-retryable ApplyOutcomeUnknown", err)
		}
		for _, want := range []string{"already started", "attempt 1", fmt.Sprintf("%d@", os.Getpid()), "exit code 0", "log "} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q does not name the first attempt (%q)", err, want)
			}
		}
	}
	data, err := os.ReadFile(filepath.Join(f.dir, "ran.log"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(data), "\n"); got != 1 {
		t.Errorf("the command ran %d times; want once", got)
	}
	// A revised plan is a different apply.
	sha2, err := f.acts.Plans.Put([]byte(`{"format_version":"1.2","revised":true}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runApply(t, f.acts, activities.ApplyInput{RunID: "run-once", Workspace: "ws", PlanSHA256: sha2}); err != nil {
		t.Errorf("apply of a revised plan: %v; want it to run", err)
	}
}

// TestApplySaysWhenTheFirstAttemptRecordedNoOutcome is the worker that died
// mid-apply: the claim has no outcome, and the message says so.
func TestApplySaysWhenTheFirstAttemptRecordedNoOutcome(t *testing.T) {
	f := newActivities(t, "#!/bin/sh\necho ran >> ran.log\n")
	if err := f.acts.Claims.Claim(activities.Claim{RunID: "run-d", PlanSHA256: f.sha, Attempt: 1, Worker: "1@gone@q", ClaimedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, err := runApply(t, f.acts, activities.ApplyInput{RunID: "run-d", Workspace: "ws", PlanSHA256: f.sha})
	if !isAppError(err, activities.ErrApplyOutcomeUnknown) || !strings.Contains(err.Error(), "1@gone@q") || !strings.Contains(err.Error(), "recorded no outcome") {
		t.Errorf("apply after a dead attempt: %v; want ApplyOutcomeUnknown naming it, without outcome", err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "ran.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the command ran (%v); want not", err)
	}
}

func TestApplyRefusesWithoutAClaimStore(t *testing.T) {
	f := newActivities(t, "#!/bin/sh\necho ran >> ran.log\n")
	f.acts.Claims = nil
	if _, err := runApply(t, f.acts, activities.ApplyInput{RunID: "r", Workspace: "ws", PlanSHA256: f.sha}); !isAppError(err, activities.ErrClaimUnavailable) {
		t.Errorf("apply without claims: %v; want ClaimUnavailable", err)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "ran.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the command ran (%v); want not", err)
	}
}

// TestApplyEnvironmentIsAnAllowList: the worker's secrets stay in the
// worker; env_from names get through.
func TestApplyEnvironmentIsAnAllowList(t *testing.T) {
	t.Setenv("GATEHOUSE_SIGNING_KEYS", "k1:c2VjcmV0")
	t.Setenv("HOOK_SECRET", "hook-secret-value")
	t.Setenv("GATEHOUSE_TOKEN", "dev-alice")
	t.Setenv("AWS_PROFILE", "prod-apply")
	t.Setenv("TF_IN_AUTOMATION", "1")
	t.Setenv("LANG", "C.UTF-8")
	dir := t.TempDir()
	path := writeScript(t, dir, "apply.sh", "#!/bin/sh\nenv > env.txt\n")
	cfg, err := config.Parse([]byte(`workspaces:
  - name: ws
    notify: {webhook: {url: "https://hooks.example.com/x", secret_env: HOOK_SECRET}}
    apply:
      command: ["` + path + `"]
      dir: "` + dir + `"
      env_from: [AWS_PROFILE, TF_IN_AUTOMATION, NOT_SET_ANYWHERE]
`))
	if err != nil {
		t.Fatal(err)
	}
	f := newActivities(t, "#!/bin/sh\n")
	f.acts.Config = cfg
	if _, err := runApply(t, f.acts, activities.ApplyInput{RunID: "r-env", Workspace: "ws", PlanSHA256: f.sha}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "env.txt"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		name, value, _ := strings.Cut(line, "=")
		got[name] = value
	}
	allowed := []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR",
		"GATEHOUSE_RUN_ID", "GATEHOUSE_WORKSPACE", "GATEHOUSE_PLAN_SHA256", "GATEHOUSE_PLAN_FILE", "GATEHOUSE_PLAN_JSON",
		"AWS_PROFILE", "TF_IN_AUTOMATION",
		"PWD", "OLDPWD", "SHLVL", "_"} // the last four the shell sets itself
	for name := range got {
		if !slices.Contains(allowed, name) {
			t.Errorf("the command saw %s; want only the allow-list", name)
		}
	}
	for name, want := range map[string]string{"AWS_PROFILE": "prod-apply", "TF_IN_AUTOMATION": "1", "LANG": "C.UTF-8", "GATEHOUSE_RUN_ID": "r-env", "PATH": os.Getenv("PATH")} {
		if got[name] != want {
			t.Errorf("%s=%q; want %q", name, got[name], want)
		}
	}
	if strings.Contains(string(data), "hook-secret-value") || strings.Contains(string(data), "c2VjcmV0") {
		t.Error("a secret's value reached the command")
	}
}

// startExecute runs the executor on script in the background and waits
// until the script has written its pid to ./pid.
func startExecute(t *testing.T, e activities.CommandExecutor, script string) (dir string, pid int, cancel context.CancelFunc, done <-chan approval.ApplyResult) {
	t.Helper()
	dir = t.TempDir()
	path := writeScript(t, dir, "apply.sh", script)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch := make(chan approval.ApplyResult, 1)
	go func() {
		ch <- e.Execute(ctx, activities.ApplyJob{RunID: "r", Workspace: "ws", Apply: config.Apply{Command: []string{path}, Dir: dir}, Output: &strings.Builder{}})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		data, err := os.ReadFile(filepath.Join(dir, "pid"))
		if err == nil && strings.HasSuffix(string(data), "\n") {
			pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
			if err != nil {
				t.Fatal(err)
			}
			return dir, pid, cancel, ch
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the script did not start")
	return
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestApplyRunsInItsOwnProcessGroup(t *testing.T) {
	dir, pid, cancel, done := startExecute(t, activities.CommandExecutor{}, "#!/bin/sh\necho $$ > pid\nwhile [ ! -e stop ]; do sleep 0.05; done\n")
	pgid, err := syscall.Getpgid(pid)
	if err != nil {
		t.Fatal(err)
	}
	if pgid != pid || pgid == syscall.Getpgrp() {
		t.Errorf("apply pid %d is in group %d (the test's is %d); want a group of its own", pid, pgid, syscall.Getpgrp())
	}
	if err := os.WriteFile(filepath.Join(dir, "stop"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if res := <-done; res.ExitCode != 0 {
		t.Errorf("result %+v; want success", res)
	}
	cancel()
}

func TestApplyCancelSendsSIGINTToTheGroup(t *testing.T) {
	dir, _, cancel, done := startExecute(t, activities.CommandExecutor{Grace: 10 * time.Second}, `#!/bin/sh
trap 'echo interrupted > marker; exit 3' INT
echo $$ > pid
while :; do sleep 0.05; done
`)
	cancel()
	select {
	case res := <-done:
		if !res.Executed || res.ExitCode != 3 || !strings.Contains(res.Error, "interrupted") {
			t.Errorf("result %+v; want exit 3, interrupted", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the command did not stop on SIGINT")
	}
	if !exists(filepath.Join(dir, "marker")) {
		t.Error("the command did not see SIGINT")
	}
}

func TestApplyIgnoringSIGINTIsKilledAfterTheGrace(t *testing.T) {
	const grace = time.Second
	dir, pid, cancel, done := startExecute(t, activities.CommandExecutor{Grace: grace}, `#!/bin/sh
trap '' INT
echo $$ > pid
sleep 30
touch survived
`)
	start := time.Now()
	cancel()
	select {
	case res := <-done:
		took := time.Since(start)
		if took < grace || took > grace+3*time.Second {
			t.Errorf("stopped %s after the cancel; want just after the %s grace", took, grace)
		}
		if res.ExitCode != -1 || !strings.Contains(res.Error, "killed") {
			t.Errorf("result %+v; want killed", res)
		}
		t.Logf("SIGKILL %s after the cancel (grace %s)", took, grace)
	case <-time.After(grace + 10*time.Second):
		t.Fatal("the command was not killed")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("apply process %d: %v; want gone", pid, err)
	}
	// sleep ignored SIGINT too (ignored signals are inherited): only the
	// group's SIGKILL stops it before it could run on.
	if left := liveInGroup(t, pid, 2*time.Second); left != "" {
		t.Errorf("processes left in the apply's group: %s", left)
	}
	if exists(filepath.Join(dir, "survived")) {
		t.Error("the command survived")
	}
}

// liveInGroup waits up to wait for process group pgid to have no live
// members (zombies the reaper has not collected yet do not count) and
// returns what ps says of those left.
func liveInGroup(t *testing.T, pgid int, wait time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		out, _ := exec.Command("ps", "-o", "pid=,stat=,args=", "-g", strconv.Itoa(pgid)).Output()
		var live []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && !strings.HasPrefix(f[1], "Z") {
				live = append(live, line)
			}
		}
		if len(live) == 0 || time.Now().After(deadline) {
			return strings.Join(live, "; ")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestApplyLogIsBoundedAndStored(t *testing.T) {
	f := newActivities(t, "#!/bin/sh\necho FIRST\nhead -c 1572864 /dev/zero | tr '\\0' x\necho\necho LAST\n")
	res, err := runApply(t, f.acts, activities.ApplyInput{RunID: "r-log", Workspace: "ws", PlanSHA256: f.sha})
	if err != nil {
		t.Fatal(err)
	}
	out := applyLog(t, f, res)
	if !res.LogTruncated || !strings.HasPrefix(out, "[gatehouse: output truncated") {
		t.Errorf("log starts %q, truncated=%v; want marked truncated", out[:80], res.LogTruncated)
	}
	if strings.Contains(out, "FIRST") || !strings.HasSuffix(out, "x\nLAST\n") {
		t.Error("log does not hold the output's tail")
	}
	marker, tail, _ := strings.Cut(out, "\n")
	if len(tail) != 1<<20 {
		t.Errorf("kept %d bytes after the marker %q; want the last 1 MiB", len(tail), marker)
	}
	claim, err := f.acts.Claims.Get("r-log", f.sha)
	if err != nil || claim.Outcome == nil || claim.Outcome.LogSHA256 != res.LogSHA256 {
		t.Errorf("claim %+v, %v; want its outcome pointing at the log", claim, err)
	}
}
