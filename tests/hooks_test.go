package tests

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/gittest"
	"github.com/gatehouse-dev/gatehouse/internal/tofutest"
	"github.com/gatehouse-dev/gatehouse/starter"
)

// The tests in this file start runs the way teams' tools do: a signed
// generic webhook, and GitHub deliveries (real payloads from
// gateway/testdata/github). Gatehouse plans the runs with a real OpenTofu
// from a git repository made in a temp dir, read over file://.

// webhookConfig has two workspaces of one repository, each watching its own
// directory, and one of another repository. The fixtures' repository is
// ailisp/gcbapp-buildconfig-example, branch master. TOFU and REPO are filled
// in.
const webhookConfig = `
users:
  - {id: alice, email: alice@example.com, groups: [platform], roles: [approver], token: t-alice}
  - {id: bob, email: bob@example.com, groups: [platform], roles: [approver], token: t-bob}
  - {id: victor, email: victor@example.com, roles: [viewer], token: t-victor}
  - {id: ci-bot, email: ci@example.com, source: local, automation: true, token: t-ci}
github:
  webhook_secret: gh-secret
  automation_user: ci-bot
  users: {ailisp: alice}
workspaces:
  - name: net
    terraform: {binary: TOFU, git: {url: REPO, ref: master, path: infra/network}}
    hooks: {secret: hook-secret}
    github: {repository: ailisp/gcbapp-buildconfig-example, branch: master, paths: ["infra/network/**"]}
    rules:
      - {name: platform-review, approvers: {groups: [platform]}}
  - name: iam
    terraform: {binary: TOFU, git: {url: REPO, ref: master, path: infra/iam}}
    github: {repository: ailisp/gcbapp-buildconfig-example, branch: master, paths: ["infra/iam/**"]}
    rules:
      - {name: platform-review, approvers: {groups: [platform]}}
  - name: elsewhere
    terraform: {binary: TOFU, git: {url: REPO, ref: master, path: infra/network}}
    github: {repository: ailisp/another-repository, branch: master}
    rules:
      - {name: platform-review, approvers: {groups: [platform]}}
`

// commitModules writes one terraform_data module per directory (directory
// → input) to the repository, pushes and returns the commit.
func commitModules(r *gittest.Repo, modules map[string]string) string {
	files := map[string]string{}
	for dir, input := range modules {
		files[dir+"/main.tf"] = fmt.Sprintf("resource \"terraform_data\" \"this\" {\n  input = %q\n}\n", input)
	}
	return r.Commit(files)
}

// newWebhookStack is newStack with webhookConfig: its own Temporal server,
// worker and gateway.
func newWebhookStack(t *testing.T, repo *gittest.Repo) *stack {
	t.Helper()
	yaml := strings.NewReplacer("TOFU", strconv.Quote(tofutest.Binary(t)), "REPO", strconv.Quote(repo.URL())).Replace(webhookConfig)
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	s := stackFor(t, cfg, stackOptions{})
	return s
}

// signHook signs body as Gatehouse signs its own webhooks, at ts.
func signHook(secret string, ts time.Time, body string) []string {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(stamp + "." + body))
	return []string{activities.HeaderTimestamp, stamp, activities.HeaderSignature, "sha256=" + hex.EncodeToString(mac.Sum(nil))}
}

// runIDs lists the ids of a workspace's runs.
func (s *stack) runIDs(ws string) []string {
	s.t.Helper()
	r := s.call("GET", "/api/v1/workspaces/"+ws+"/runs", "t-bob", nil)
	if r.status != http.StatusOK {
		s.t.Fatalf("list runs: %d %s", r.status, r.body)
	}
	var list struct {
		Runs []starter.RunSummary `json:"runs"`
	}
	r.decode(s.t, &list)
	var ids []string
	for _, run := range list.Runs {
		ids = append(ids, run.ID)
	}
	return ids
}

// TestHookStartsAPlannedRun: a delivery signed with the workspace's hook
// secret starts a run for requested_by, which Gatehouse plans; a replay is
// the same run; forged, unsigned and stale deliveries start nothing; the
// requester cannot approve what the hook started in their name.
func TestHookStartsAPlannedRun(t *testing.T) {
	repo := gittest.New(t, "master")
	commitModules(repo, map[string]string{"infra/network": "v1", "infra/iam": "v1"})
	s := newWebhookStack(t, repo)
	body := `{"ref": "master", "message": "deploy from the pipeline", "requested_by": "alice"}`
	headers := signHook("hook-secret", time.Now(), body)

	r := s.call("POST", "/api/v1/hooks/net", "", body, headers...)
	if r.status != http.StatusCreated {
		t.Fatalf("signed hook: got %d %s; want 201", r.status, r.body)
	}
	var run gateway.RunView
	r.decode(t, &run)
	if run.RequestedBy != "alice" || run.SubmittedBy != "" || run.Origin == nil || run.Origin.Trigger != "hook" || run.Origin.Ref != "master" {
		t.Errorf("got requested_by %q, submitted_by %q, origin %+v; want alice's run from the hook at master", run.RequestedBy, run.SubmittedBy, run.Origin)
	}
	pending := s.waitForPlanned(run, approval.StatusPendingApproval)
	if pending.Origin == nil || pending.Origin.Commit == "" || pending.Plan.Adds != 1 {
		t.Errorf("planned run: origin %+v, plan %+v; want the commit planned and one resource to add", pending.Origin, pending.Plan.PlanSummary)
	}

	again := s.call("POST", "/api/v1/hooks/net", "", body, headers...)
	var replayed gateway.RunView
	again.decode(t, &replayed)
	if again.status != http.StatusCreated || replayed.ID != run.ID {
		t.Errorf("replay: got %d run %q; want 201 and run %s", again.status, replayed.ID, run.ID)
	}

	for name, h := range map[string][]string{
		"forged":   signHook("not-the-secret", time.Now(), body),
		"unsigned": nil,
		"stale":    signHook("hook-secret", time.Now().Add(-6*time.Minute), body),
		"future":   signHook("hook-secret", time.Now().Add(6*time.Minute), body),
	} {
		r := s.call("POST", "/api/v1/hooks/net", "", `{"ref": "master", "message": "`+name+`", "requested_by": "alice"}`, h...)
		if r.status != http.StatusUnauthorized {
			t.Errorf("%s: got %d %s; want 401", name, r.status, r.body)
			continue
		}
		r.errorMessage(t)
	}
	if ids := s.runIDs("net"); !slices.Equal(ids, []string{run.ID}) {
		t.Errorf("runs of net: %q; want only %s", ids, run.ID)
	}

	s.decide(run, "approve", "t-alice", nil, http.StatusForbidden)
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
}

// gitHubDelivery posts a GitHub delivery signed with secret.
func (s *stack) gitHubDelivery(event, delivery, secret string, body []byte) response {
	s.t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return s.call("POST", "/api/v1/github/webhook", "", body,
		"X-GitHub-Event", event, "X-GitHub-Delivery", delivery,
		"X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
}

type gitHubAnswer struct {
	Runs []struct {
		Workspace string          `json:"workspace"`
		ID        string          `json:"id"`
		Status    approval.Status `json:"status"`
	} `json:"runs"`
	Errors  []map[string]string `json:"errors"`
	Ignored string              `json:"ignored"`
}

// byWorkspace maps each run of the answer to its workspace.
func (a gitHubAnswer) byWorkspace() map[string]string {
	out := map[string]string{}
	for _, r := range a.Runs {
		out[r.Workspace] = r.ID
	}
	return out
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../gateway/testdata/github", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestGitHubDeliveries: a real merged pull request starts a run in each
// workspace of its repository and branch, for the merger as mapped, and a
// redelivery finds the same runs; a push that changed one workspace's
// directory plans that one and ends the other no_changes; bad signatures,
// pings and other events start nothing.
func TestGitHubDeliveries(t *testing.T) {
	repo := gittest.New(t, "master")
	base := commitModules(repo, map[string]string{"infra/network": "v1", "infra/iam": "v1"})
	network := commitModules(repo, map[string]string{"infra/network": "v2"})
	s := newWebhookStack(t, repo)

	merged := readFixture(t, "pull_request.closed.merged.json")
	var prRuns map[string]string
	// merged pull request
	{
		r := s.gitHubDelivery("pull_request", "884a8280-101a-11ea-9c80-7ce4e70c2e4e", "gh-secret", merged)
		if r.status != http.StatusAccepted {
			t.Fatalf("got %d %s; want 202", r.status, r.body)
		}
		var a gitHubAnswer
		r.decode(t, &a)
		prRuns = a.byWorkspace()
		if len(a.Runs) != 2 || prRuns["net"] == "" || prRuns["iam"] == "" || len(a.Errors) != 0 {
			t.Fatalf("got %s; want runs in net and iam only", r.body)
		}
		run := s.get(gateway.RunView{Workspace: "net", ID: prRuns["net"]})
		o := run.Origin
		if o == nil || o.Trigger != "github" || o.Delivery != "884a8280-101a-11ea-9c80-7ce4e70c2e4e" || o.Actor != "ailisp" ||
			o.Commit != "a21683865c088b5fe1906cf6552d15a285a4986d" || o.Repository != "ailisp/gcbapp-buildconfig-example" {
			t.Errorf("origin %+v; want the delivery, merger and merge commit", o)
		}
		if run.RequestedBy != "alice" || run.SubmittedBy != "ci-bot" {
			t.Errorf("requested by %q, submitted by %q; want alice (ailisp) by ci-bot", run.RequestedBy, run.SubmittedBy)
		}
		if ids := s.runIDs("elsewhere"); len(ids) != 0 {
			t.Errorf("another repository's workspace has runs %q", ids)
		}
	}

	// redelivery
	{
		r := s.gitHubDelivery("pull_request", "884a8280-101a-11ea-9c80-7ce4e70c2e4e", "gh-secret", merged)
		var a gitHubAnswer
		r.decode(t, &a)
		if r.status != http.StatusAccepted || !maps.Equal(a.byWorkspace(), prRuns) {
			t.Errorf("got %d %s; want 202 with the same runs %v", r.status, r.body, prRuns)
		}
	}

	// push plans only what it changed
	{
		// The real push, moved onto this repository's commits and pushed
		// by a login the config does not map.
		var push map[string]any
		if err := json.Unmarshal(readFixture(t, "push.json"), &push); err != nil {
			t.Fatal(err)
		}
		push["before"], push["after"] = base, network
		push["sender"].(map[string]any)["login"] = "someone-unmapped"
		push["pusher"].(map[string]any)["name"] = "someone-unmapped"
		body, err := json.Marshal(push)
		if err != nil {
			t.Fatal(err)
		}
		r := s.gitHubDelivery("push", "88f41318-101a-11ea-99ad-ec7586fcd78e", "gh-secret", body)
		var a gitHubAnswer
		r.decode(t, &a)
		runs := a.byWorkspace()
		if r.status != http.StatusAccepted || len(a.Runs) != 2 {
			t.Fatalf("got %d %s; want 202 with runs in net and iam", r.status, r.body)
		}
		net := s.waitForPlanned(gateway.RunView{Workspace: "net", ID: runs["net"]}, approval.StatusPendingApproval)
		if net.RequestedBy != "ci-bot" || net.SubmittedBy != "" || net.Origin == nil || net.Origin.Commit != network {
			t.Errorf("net: requested by %q, submitted by %q, origin %+v; want ci-bot's own run of %s", net.RequestedBy, net.SubmittedBy, net.Origin, network)
		}
		s.waitForPlanned(gateway.RunView{Workspace: "iam", ID: runs["iam"]}, approval.StatusNoChanges)
		// The automation user is the requester: "self", it may not approve.
		s.decide(net, "approve", "t-ci", nil, http.StatusForbidden)
	}

	// refused and ignored deliveries start nothing
	{
		before := len(s.runIDs("net"))
		if r := s.gitHubDelivery("pull_request", "d-forged", "not-the-secret", merged); r.status != http.StatusUnauthorized {
			t.Errorf("bad signature: got %d %s; want 401", r.status, r.body)
		}
		if r := s.call("POST", "/api/v1/github/webhook", "", merged, "X-GitHub-Event", "pull_request", "X-GitHub-Delivery", "d-unsigned"); r.status != http.StatusUnauthorized {
			t.Errorf("unsigned: got %d %s; want 401", r.status, r.body)
		}
		ping := []byte(`{"zen": "Design for failure.", "hook_id": 1}`)
		if r := s.gitHubDelivery("ping", "d-ping", "gh-secret", ping); r.status != http.StatusOK {
			t.Errorf("ping: got %d %s; want 200", r.status, r.body)
		}
		if r := s.gitHubDelivery("issues", "d-issue", "gh-secret", ping); r.status != http.StatusAccepted || !strings.Contains(string(r.body), "ignored") {
			t.Errorf("unrelated event: got %d %s; want 202 ignored", r.status, r.body)
		}
		unmerged := readFixture(t, "pull_request.closed.unmerged.json")
		if r := s.gitHubDelivery("pull_request", "d-unmerged", "gh-secret", unmerged); r.status != http.StatusAccepted {
			t.Errorf("closed without merge: got %d %s; want 202", r.status, r.body)
		}
		if after := len(s.runIDs("net")); after != before {
			t.Errorf("net has %d runs after refused deliveries; want %d", after, before)
		}
	}
}

// waitForPlanned waits for a run Gatehouse plans to reach status, and says
// why when it ended otherwise.
func (s *stack) waitForPlanned(run gateway.RunView, status approval.Status) gateway.RunView {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := s.get(run)
		switch {
		case got.Status == status:
			return got
		case got.Status.Final() || time.Now().After(deadline):
			s.t.Fatalf("run %s is %s (%s); want %s", run.ID, got.Status, got.Error, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
