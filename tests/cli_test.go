package tests

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/cmd/gatehouse/cli"
	"github.com/gatehouse-dev/gatehouse/gateway"
	"github.com/gatehouse-dev/gatehouse/plan"
)

// cliStack is a stack whose gateway also signs approvals, and the
// arguments every client verb gets to reach it.
type cliStack struct {
	*stack
	url string
	key ed25519.PrivateKey
}

// newCLIStack serves a second gateway over the stack's Temporal, worker and
// plan store, with an approval key (the stack's own has none).
func newCLIStack(t *testing.T) *cliStack {
	t.Helper()
	s := newStack(t, stackOptions{})
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	srv := httptest.NewServer(gateway.New(gateway.Options{
		Config: s.acts.Config, Runs: s.runs, Plans: s.acts.Plans,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		Health: func(ctx context.Context) error {
			_, err := s.client.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		},
		ApprovalKey: key,
		Audit:       s.audit,
	}))
	t.Cleanup(srv.Close)
	return &cliStack{stack: s, url: srv.URL, key: key}
}

// cliResult is one run of the command tree.
type cliResult struct {
	code           int
	stdout, stderr string
}

// gatehouse runs the gatehouse command tree in process, as token's user
// against the stack's gateway, as main would, and returns its exit code and
// output.
func (s *cliStack) gatehouse(token string, args ...string) cliResult {
	s.t.Helper()
	root := cli.NewRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	if token != "" {
		args = append(args, "--token", token)
	}
	root.SetArgs(append(args, "--url", s.url))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, msg := cli.Exit(root.ExecuteContext(ctx))
	if msg != "" {
		errOut.WriteString(msg + "\n")
	}
	return cliResult{code: code, stdout: out.String(), stderr: errOut.String()}
}

// must insists on an exit code.
func (r cliResult) must(t *testing.T, code int, what string) cliResult {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: exit %d; want %d\nstdout: %s\nstderr: %s", what, r.code, code, r.stdout, r.stderr)
	}
	return r
}

// decode parses stdout as the one JSON object --json promises.
func (r cliResult) decode(t *testing.T, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	if err := dec.Decode(v); err != nil || dec.More() {
		t.Fatalf("stdout is not one JSON object (%v): %s", err, r.stdout)
	}
}

// waitResult is what wait --json prints.
type waitResult struct {
	Run          gateway.RunView `json:"run"`
	Result       string          `json:"result"`
	ExitCode     int             `json:"exit_code"`
	ApprovalFile string          `json:"approval_file"`
	Error        string          `json:"error"`
}

const fastPoll = "--poll-interval=100ms"

// TestCLIApproveWaitVerify: a run started, read, approved by two people and
// waited for with the CLI; the signed approval it writes verifies against
// the plan, and not against another plan, another workspace or with its
// signature altered.
func TestCLIApproveWaitVerify(t *testing.T) {
	s := newCLIStack(t)
	dir := t.TempDir()
	planPath := "../examples/plans/prod-network.json"

	var run gateway.RunView
	s.gatehouse("t-alice", "start", "-w", "prod-network", "-m", "replace the NAT gateway", "--json", planPath).must(t, 0, "start").decode(t, &run)
	planBytes, err := os.ReadFile(planPath)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != approval.StatusPendingApproval || run.RequestedBy != "alice" || run.Plan.SHA256 != plan.Hash(bytes.TrimSpace(planBytes)) {
		t.Fatalf("started %+v; want alice's pending run of the file's plan", run)
	}

	var got gateway.RunView
	s.gatehouse("t-victor", "status", run.ID, "-w", "prod-network", "--json").must(t, 0, "status").decode(t, &got)
	if got.ID != run.ID || got.Status != approval.StatusPendingApproval {
		t.Fatalf("status: %s %s; want %s pending", got.ID, got.Status, run.ID)
	}
	s.waitListed(run.ID)

	human := s.gatehouse("t-bob", "approve", run.ID, "-w", "prod-network", "--comment", "NAT swap checked").must(t, 0, "approve by bob")
	if !strings.Contains(human.stdout, "destroys-need-two 1/2") || !strings.Contains(human.stdout, "approved by bob") {
		t.Errorf("approve by bob printed %q; want the reason at 1/2 approved by bob", human.stdout)
	}
	s.gatehouse("t-carol", "approve", run.ID, "-w", "prod-network", "--json").must(t, 0, "approve by carol").decode(t, &got)

	approvalPath := filepath.Join(dir, "approval.json")
	var res waitResult
	s.gatehouse("t-alice", "wait", run.ID, "-w", "prod-network", "--out", approvalPath, "--json", fastPoll).must(t, cli.ExitOK, "wait").decode(t, &res)
	if res.Result != "applied" || res.Run.Status != approval.StatusApplied || res.ApprovalFile != approvalPath {
		t.Fatalf("wait: %+v; want applied with the approval written", res)
	}

	var doc gateway.SignedApproval
	data, err := os.ReadFile(approvalPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Run != run.ID || doc.Workspace != "prod-network" || doc.PlanSHA256 != run.Plan.SHA256 || len(doc.Approvers) != 2 ||
		doc.Approvers[0].UserID != "bob" || doc.Approvers[1].UserID != "carol" || doc.Approvers[0].Email != "bob@example.com" {
		t.Fatalf("approval %s; want run %s of prod-network approved by bob and carol", data, run.ID)
	}

	// The public key: from the gateway, and pinned.
	var info gateway.ApprovalKeyInfo
	s.gatehouse("", "keys", "public", "--json").must(t, 0, "keys public").decode(t, &info)
	if info.PublicKey != base64.StdEncoding.EncodeToString(s.key.Public().(ed25519.PublicKey)) {
		t.Fatalf("keys public: %+v; want the gateway's approval key", info)
	}
	s.gatehouse("", "verify", approvalPath, "--plan", planPath).must(t, cli.ExitOK, "verify with the key from the gateway")
	var verified struct {
		Valid    bool                   `json:"valid"`
		Approval gateway.SignedApproval `json:"approval"`
	}
	s.gatehouse("", "verify", approvalPath, "--plan", planPath, "--public-key", info.PublicKey, "-w", "prod-network", "--json").
		must(t, cli.ExitOK, "verify with a pinned key").decode(t, &verified)
	if !verified.Valid || verified.Approval.Run != run.ID {
		t.Errorf("verify --json: %+v; want valid for %s", verified, run.ID)
	}

	s.gatehouse("", "verify", approvalPath, "--plan", "../examples/plans/add-only.json").must(t, cli.ExitPlanMismatch, "verify against another plan")
	s.gatehouse("", "verify", approvalPath, "--plan", planPath, "-w", "staging-app").must(t, cli.ExitWrongWorkspace, "verify for another workspace")
	tampered := filepath.Join(dir, "tampered.json")
	sig, _ := base64.StdEncoding.DecodeString(doc.Signature)
	sig[0] ^= 1
	if err := os.WriteFile(tampered, bytes.Replace(data, []byte(doc.Signature), []byte(base64.StdEncoding.EncodeToString(sig)), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	var bad struct {
		Valid    bool   `json:"valid"`
		ExitCode int    `json:"exit_code"`
		Error    string `json:"error"`
	}
	s.gatehouse("", "verify", tampered, "--plan", planPath, "--json").must(t, cli.ExitBadSignature, "verify a tampered signature").decode(t, &bad)
	if bad.Valid || bad.ExitCode != cli.ExitBadSignature || bad.Error == "" {
		t.Errorf("verify --json of a tampered approval: %+v; want invalid with exit code %d", bad, cli.ExitBadSignature)
	}

	logs := s.gatehouse("t-alice", "logs", run.ID, "-w", "prod-network").must(t, 0, "logs")
	if !strings.Contains(logs.stdout, run.Plan.SHA256) {
		t.Errorf("logs: %q; want the apply's output naming the plan", logs.stdout)
	}
}

// waitListed waits until the run shows up in `gatehouse list` (visibility
// is eventually consistent).
func (s *cliStack) waitListed(id string) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var list struct {
			Runs []struct{ ID, Status string } `json:"runs"`
		}
		s.gatehouse("t-victor", "list", "-w", "prod-network", "--status", "pending_approval", "--json").must(s.t, 0, "list").decode(s.t, &list)
		if len(list.Runs) == 1 && list.Runs[0].ID == id {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("list: %+v; want run %s", list, id)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCLIWaitExitCodes: wait says how a run ended in its exit code: a
// rejected run, a wait that times out, and usage errors each have their own.
func TestCLIWaitExitCodes(t *testing.T) {
	s := newCLIStack(t)
	planPath := "../examples/plans/prod-network.json"
	var run gateway.RunView
	s.gatehouse("t-alice", "start", "-w", "prod-network", "--json", planPath).must(t, 0, "start").decode(t, &run)

	var res waitResult
	s.gatehouse("t-alice", "wait", run.ID, "-w", "prod-network", "--timeout", "300ms", "--json", fastPoll).
		must(t, cli.ExitWaitTimeout, "wait on a pending run with --timeout").decode(t, &res)
	if res.Result != "wait_timeout" || res.Run.Status != approval.StatusPendingApproval || res.Error == "" {
		t.Errorf("wait --timeout: %+v; want wait_timeout on the pending run", res)
	}

	s.gatehouse("t-bob", "reject", run.ID, "-w", "prod-network").must(t, cli.ExitGeneric, "reject without --comment")
	s.gatehouse("t-bob", "reject", run.ID, "-w", "prod-network", "--comment", "not today").must(t, 0, "reject")
	human := s.gatehouse("t-alice", "wait", run.ID, "-w", "prod-network", "--out", filepath.Join(t.TempDir(), "a.json"), fastPoll).
		must(t, cli.ExitRejected, "wait on a rejected run")
	if !strings.Contains(human.stdout, "rejected") {
		t.Errorf("wait printed %q; want the rejection", human.stdout)
	}

	var e struct {
		Error    string `json:"error"`
		ExitCode int    `json:"exit_code"`
	}
	s.gatehouse("t-alice", "status", "run-nope", "-w", "prod-network", "--json").must(t, cli.ExitGeneric, "status of no run").decode(t, &e)
	if !strings.Contains(e.Error, "404") || e.ExitCode != cli.ExitGeneric {
		t.Errorf("status of no run: %+v; want a 404 error object", e)
	}
	s.gatehouse("", "status", run.ID, "-w", "prod-network").must(t, cli.ExitGeneric, "status without a token")
}

// TestCLIGateOnly: in a workspace without apply, a run started with its
// binary plan is done once approved: wait exits 0 and writes an approval
// that verifies the plan JSON and the binary plan, and no other binary.
func TestCLIGateOnly(t *testing.T) {
	s := newCLIStack(t)
	dir := t.TempDir()
	planPath := "../examples/plans/add-only.json"
	binary, other := filepath.Join(dir, "tfplan"), filepath.Join(dir, "other.tfplan")
	for path, content := range map[string]string{binary: "PK\x03\x04 binary plan", other: "PK\x03\x04 another plan"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var run gateway.RunView
	s.gatehouse("t-alice", "start", "-w", "other", "--plan-file", binary, "--json", planPath).must(t, 0, "start").decode(t, &run)
	s.gatehouse("t-dave", "approve", run.ID, "-w", "other").must(t, 0, "approve")
	out := filepath.Join(dir, "approval.json")
	var res waitResult
	s.gatehouse("t-alice", "wait", run.ID, "-w", "other", "--out", out, "--json", fastPoll).must(t, cli.ExitOK, "wait").decode(t, &res)
	// approved once gate mode ends runs there; applied (with nothing run)
	// before.
	if res.Run.Status != approval.StatusApproved && res.Run.Status != approval.StatusApplied {
		t.Fatalf("wait: %+v; want the run approved", res)
	}
	s.gatehouse("", "verify", out, "--plan", planPath, "--plan-file", binary, "-w", "other").must(t, cli.ExitOK, "verify")
	s.gatehouse("", "verify", out, "--plan", planPath, "--plan-file", other).must(t, cli.ExitPlanMismatch, "verify another binary plan")
}

// TestCLIHelp: every client verb has an example in its --help, and wait's
// help lists a distinct exit code for each way a run can end.
func TestCLIHelp(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Example == "" {
				t.Errorf("gatehouse %s has no example", sub.CommandPath())
			}
			walk(sub)
		}
	}
	root := cli.NewRoot()
	walk(root)

	wait, _, err := root.Find([]string{"wait"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]approval.Status{}
	for _, st := range []approval.Status{
		approval.StatusRejected, approval.StatusCancelled, approval.StatusTimedOut, approval.StatusFailed, approval.StatusPolicyFailed,
		approval.StatusPlanFailed, approval.StatusNoChanges, approval.StatusSuperseded, approval.StatusOutcomeUnknown, approval.StatusTerminated,
	} {
		code := cli.RunExitCode(st)
		if code <= cli.ExitGeneric || seen[code] != "" {
			t.Errorf("%s exits %d; want a code of its own (taken by %q)", st, code, seen[code])
		}
		seen[code] = st
		if line := fmt.Sprintf("%4d  %s", code, st); !strings.Contains(wait.Long, line) {
			t.Errorf("wait --help does not list %q", line)
		}
	}
}
