package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/tofutest"
	"github.com/gatehouse-dev/gatehouse/plan"
)

// The tests in this file run a real OpenTofu (tofutest.Binary; .ci/tofu.sh
// builds it) on terraform_data resources with local state: Gatehouse plans,
// people approve, Gatehouse applies exactly the stored binary plan.

// tfModule writes a module of two terraform_data resources whose input is
// value, and returns its directory.
func tfModule(t *testing.T, dir, value string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
variable "suffix" {
  type    = string
  default = "x"
}

resource "terraform_data" "network" {
  input = "%s-${var.suffix}"
}

resource "terraform_data" "subnet" {
  input            = "%s-subnet"
  triggers_replace = "%s"
  # Slow enough that two applies would overlap if nothing held them apart.
  provisioner "local-exec" {
    command = "echo start $(date +%%s.%%N) >> applies.log; sleep 1; echo end $(date +%%s.%%N) >> applies.log"
  }
}
`, value, value, value)
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tfStack is a stack with terraform workspaces in dir: tf (one platform
// approval, re-plans before apply) and tf-queue (no re-plan, no
// supersede: several runs wait at once).
func tfStack(t *testing.T) (*stack, string, string) {
	t.Helper()
	tofu := tofutest.Binary(t)
	root := t.TempDir()
	tf, queue := tfModule(t, filepath.Join(root, "tf"), "v1"), tfModule(t, filepath.Join(root, "queue"), "q1")
	ws := fmt.Sprintf(`
  - name: tf
    terraform: {binary: %q, dir: %q, replan_before_apply: true, vars: {suffix: e2e}}
    rules:
      - {name: platform-review, approvers: {groups: [platform]}}
  - name: tf-queue
    supersede: false
    terraform: {binary: %q, dir: %q}
    rules:
      - {name: platform-review, approvers: {groups: [platform]}}
`, tofu, tf, tofu, queue)
	return newStack(t, stackOptions{workspaces: ws}), tf, queue
}

// startPlanned asks Gatehouse to plan a workspace and returns the run.
func (s *stack) startPlanned(ws, token string) gateway.RunView {
	s.t.Helper()
	r := s.call("POST", "/api/v1/workspaces/"+ws+"/runs", token, map[string]any{"message": "e2e plan"})
	if r.status != http.StatusCreated {
		s.t.Fatalf("create run: %d %s", r.status, r.body)
	}
	var run gateway.RunView
	r.decode(s.t, &run)
	return run
}

// waitForStatus is waitFor with a longer deadline: planning and applying
// with a real binary take seconds each on two cores.
func (s *stack) waitLong(run gateway.RunView, status approval.Status) gateway.RunView {
	s.t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		got := s.get(run)
		if got.Status == status {
			return got
		}
		if got.Status.Final() || time.Now().After(deadline) {
			s.t.Fatalf("run %s is %s (error %q); want %s", run.ID, got.Status, got.Error, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readState(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "terraform.tfstate"))
	if err != nil {
		t.Fatalf("state: %v", err)
	}
	return string(data)
}

func TestTerraformPlanApproveApply(t *testing.T) {
	s, dir, _ := tfStack(t)
	run := s.startPlanned("tf", "t-alice")
	if run.Status != approval.StatusPlanning && run.Status != approval.StatusPendingApproval {
		t.Fatalf("new run is %s; want planning", run.Status)
	}
	pending := s.waitLong(run, approval.StatusPendingApproval)
	if pending.Plan.Adds != 2 || len(pending.Plan.Resources) != 2 || pending.Origin == nil || pending.Origin.PlanFileSHA256 == "" ||
		!strings.HasPrefix(pending.Origin.Binary, "tofu") {
		t.Fatalf("planned run: plan %+v, origin %+v; want 2 adds from a stored binary plan made by tofu", pending.Plan.PlanSummary, pending.Origin)
	}
	if _, err := os.Stat(filepath.Join(dir, "terraform.tfstate")); err == nil {
		t.Fatal("state exists before anyone approved")
	}
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
	done := s.waitLong(run, approval.StatusApplied)
	if state := readState(t, dir); !strings.Contains(state, `"v1-e2e"`) || !strings.Contains(state, "terraform_data") {
		t.Errorf("state after apply:\n%s\nwant both terraform_data resources, the var applied", state)
	}
	logs := s.call("GET", s.runPath(run)+"/logs", "t-bob", nil)
	if done.Apply == nil || !strings.Contains(string(logs.body), "Apply complete") {
		t.Errorf("apply %+v, logs %q; want the apply's output kept", done.Apply, logs.body)
	}

	// Planning again changes nothing: no_changes, nobody asked.
	again := s.startPlanned("tf", "t-alice")
	if got := s.waitLong(again, approval.StatusNoChanges); len(got.Reasons) != 0 && got.Reasons[0].State == approval.ReasonOpen {
		t.Errorf("a no-op plan opened reasons: %+v", got.Reasons)
	}
}

func TestTerraformReplanBeforeApplySendsAChangedPlanBack(t *testing.T) {
	s, dir, _ := tfStack(t)
	run := s.startPlanned("tf", "t-alice")
	s.waitLong(run, approval.StatusPendingApproval)
	// The files change between approval and apply.
	tfModule(t, dir, "v2")
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
	deadline := time.Now().Add(120 * time.Second)
	var back gateway.RunView
	for {
		back = s.get(run)
		if back.Status == approval.StatusPendingApproval && len(back.Rounds) == 2 {
			break
		}
		if back.Status.Final() || time.Now().After(deadline) {
			t.Fatalf("run %s with %d rounds (error %q); want it back at pending_approval in a second round", back.Status, len(back.Rounds), back.Error)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "terraform.tfstate")); err == nil {
		t.Fatal("the changed plan was applied without a new approval")
	}
	s.decide(run, "approve", "t-carol", nil, http.StatusOK)
	s.waitLong(run, approval.StatusApplied)
	if state := readState(t, dir); !strings.Contains(state, `"v2-e2e"`) {
		t.Errorf("state after the second approval:\n%s\nwant the v2 plan applied", state)
	}
}

func TestTerraformTamperedPlanIsRefused(t *testing.T) {
	s, dir, _ := tfStack(t)
	run := s.startPlanned("tf-queue", "t-alice")
	pending := s.waitLong(run, approval.StatusPendingApproval)
	// Someone with access to the data dir swaps the approved binary plan.
	if err := os.WriteFile(s.acts.Plans.Path(pending.Origin.PlanFileSHA256), []byte("not the approved plan"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
	failed := s.waitLong(run, approval.StatusFailed)
	if failed.Apply == nil || failed.Apply.Executed || !strings.Contains(failed.Apply.Error, "altered") {
		t.Errorf("apply %+v; want refused, nothing executed, saying the plan was altered", failed.Apply)
	}
	_ = dir
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "queue", "terraform.tfstate")); err == nil {
		t.Error("a tampered plan was applied")
	}
}

func TestTerraformApprovedRunsApplyOneAfterTheOther(t *testing.T) {
	s, _, dir := tfStack(t)
	first := s.startPlanned("tf-queue", "t-alice")
	s.waitLong(first, approval.StatusPendingApproval)
	tfModule(t, dir, "q2") // the second run plans another change
	second := s.startPlanned("tf-queue", "t-carol")
	s.waitLong(second, approval.StatusPendingApproval)
	s.decide(first, "approve", "t-bob", nil, http.StatusOK)
	s.decide(second, "approve", "t-bob", nil, http.StatusOK)
	s.waitLong(first, approval.StatusApplied)
	// The second plan was made against the state before the first apply:
	// OpenTofu finds it stale, nothing is applied, and it comes back to
	// people as a new round.
	deadline := time.Now().Add(120 * time.Second)
	for {
		got := s.get(second)
		if got.Status == approval.StatusPendingApproval && len(got.Rounds) == 2 {
			break
		}
		if got.Status.Final() || time.Now().After(deadline) {
			t.Fatalf("second run %s (error %q, termination %+v); want a new round after its stale plan", got.Status, got.Error, got.Termination)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.decide(second, "approve", "t-bob", nil, http.StatusOK)
	s.waitLong(second, approval.StatusApplied)
	if state := readState(t, dir); !strings.Contains(state, `"q2-subnet"`) {
		t.Errorf("state:\n%s\nwant the second run's change applied", state)
	}
	// The applies never overlapped: each start follows the previous end.
	data, err := os.ReadFile(filepath.Join(dir, "applies.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(strings.ReplaceAll(string(data), "\n", " "))
	var marks []string
	for i := 0; i+1 < len(lines); i += 2 {
		marks = append(marks, lines[i])
	}
	if strings.Join(marks, ",") != "start,end,start,end" {
		t.Errorf("apply log %q; want start,end then start,end: one apply at a time", data)
	}
}

func TestNewerRunSupersedesOneWaiting(t *testing.T) {
	s, _, _ := tfStack(t)
	older := s.startPlanned("tf", "t-alice")
	s.waitLong(older, approval.StatusPendingApproval)
	newer := s.startPlanned("tf", "t-carol")
	got := s.waitLong(older, approval.StatusSuperseded)
	last := got.Decisions[len(got.Decisions)-1]
	if last.Decision != approval.DecisionSupersede || !strings.Contains(last.Comment, newer.ID) {
		t.Errorf("last decision %+v; want the supersede naming %s", last, newer.ID)
	}
	s.waitLong(newer, approval.StatusPendingApproval)
	var raw map[string]any
	_ = json.Unmarshal(s.call("GET", s.runPath(newer), "t-bob", nil).body, &raw)
}

// TestSubmittedBinaryPlanByMultipartIsApplied: a pipeline that plans itself
// sends the plan's JSON and its binary (plan -out) as a multipart form, as
// `curl -F plan=@plan.json -F plan_file=@tfplan` does; Gatehouse applies
// exactly that binary plan once approved.
func TestSubmittedBinaryPlanByMultipartIsApplied(t *testing.T) {
	s, _, dir := tfStack(t)
	tofu := tofutest.Binary(t)
	env := append(os.Environ(), "TF_CLI_CONFIG_FILE=", "TF_IN_AUTOMATION=1")
	for _, args := range [][]string{{"init", "-input=false"}, {"plan", "-input=false", "-out=pipeline.tfplan"}} {
		cmd := exec.Command(tofu, args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tofu %v: %v\n%s", args, err, out)
		}
	}
	show := exec.Command(tofu, "show", "-json", "pipeline.tfplan")
	show.Dir, show.Env = dir, env
	planJSON, err := show.Output()
	if err != nil {
		t.Fatal(err)
	}
	binary, err := os.ReadFile(filepath.Join(dir, "pipeline.tfplan"))
	if err != nil {
		t.Fatal(err)
	}
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	for name, data := range map[string][]byte{"plan": planJSON, "plan_file": binary} {
		w, _ := mw.CreateFormFile(name, name)
		w.Write(data)
	}
	mw.WriteField("message", "from the pipeline")
	mw.Close()
	r := s.call("POST", "/api/v1/workspaces/tf-queue/runs", "t-alice", form.Bytes(), "Content-Type", mw.FormDataContentType())
	if r.status != http.StatusCreated {
		t.Fatalf("multipart create: %d %s", r.status, r.body)
	}
	var run gateway.RunView
	r.decode(t, &run)
	if run.Origin == nil || run.Origin.PlanFileSHA256 != plan.Hash(binary) || run.Plan.SHA256 != plan.Hash(bytes.TrimSpace(planJSON)) {
		t.Fatalf("run origin %+v plan %s; want the submitted binary and JSON hashes", run.Origin, run.Plan.SHA256)
	}
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
	s.waitLong(run, approval.StatusApplied)
	if state := readState(t, dir); !strings.Contains(state, `"q1-x"`) {
		t.Errorf("state:\n%s\nwant the pipeline's plan applied", state)
	}
	// A terraform workspace refuses a JSON plan without its binary.
	r = s.call("POST", "/api/v1/workspaces/tf-queue/runs", "t-alice", map[string]any{"plan": json.RawMessage(planJSON)})
	if r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(t), "plan_file") {
		t.Errorf("plan without plan_file: %d %s; want 400 naming plan_file", r.status, r.body)
	}
}
