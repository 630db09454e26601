package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
	"github.com/gatehouse-dev/gatehouse/signing"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// TestForgedDecisionsThroughTemporalCountNothing sends Updates straight to
// Temporal, as anyone with its Web UI, CLI or an SDK client could: with a
// made-up actor, unsigned, signed with another key, and for a user the
// config does not know. None counts; the gateway's own approval does.
func TestForgedDecisionsThroughTemporalCountNothing(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	bob, _ := s.acts.Config.User("bob")
	otherKeys, err := signing.Parse(strings.Repeat("x", 40))
	if err != nil {
		t.Fatal(err)
	}
	sign := func(keys *signing.Keys, id string, req approval.Request) approval.Request {
		req.ID, req.IssuedAt = id, time.Now().UTC()
		payload, err := workflows.DecisionPayload(workflows.UpdateApprove, run.ID, id, req)
		if err != nil {
			t.Fatal(err)
		}
		req.Signature = keys.Sign(payload)
		return req
	}
	mallory := approval.Identity{ID: "mallory", Groups: []string{"platform"}, Roles: []approval.Role{approval.RoleApprover}}
	bobWithMoreRights := bob.Identity
	bobWithMoreRights.Roles = append(bobWithMoreRights.Roles, approval.RoleAdmin)
	for _, tc := range []struct {
		name string
		req  approval.Request
		want string
	}{
		{"unsigned, made-up actor", approval.Request{ID: "f1", Actor: bob.Identity}, "signature"},
		{"signed with another key", sign(otherKeys, "f2", approval.Request{Actor: bob.Identity}), "signature"},
		{"signed for another update id", func() approval.Request {
			r := sign(s.keys, "f3-signed", approval.Request{Actor: bob.Identity})
			r.ID = "f3"
			return r
		}(), "signature"},
		{"actor unknown to the config", sign(s.keys, "f4", approval.Request{Actor: mallory}), "not a user"},
		{"actor with rights the config does not give", sign(s.keys, "f5", approval.Request{Actor: bobWithMoreRights}), "other groups or roles"},
		{"stale signature", func() approval.Request {
			r := approval.Request{ID: "f6", Actor: bob.Identity, IssuedAt: time.Now().Add(-time.Hour).UTC()}
			payload, _ := workflows.DecisionPayload(workflows.UpdateApprove, run.ID, r.ID, r)
			r.Signature = s.keys.Sign(payload)
			return r
		}(), "too long ago"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := s.client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
				WorkflowID: run.ID, UpdateID: tc.req.ID, UpdateName: workflows.UpdateApprove,
				Args: []any{tc.req}, WaitForStage: client.WorkflowUpdateStageCompleted,
			})
			if err == nil {
				err = h.Get(ctx, nil)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("forged update: got %v; want a refusal mentioning %q", err, tc.want)
			}
		})
	}
	got := s.get(run)
	if got.Status != approval.StatusPendingApproval || got.Reasons[0].Progress != "0/2" || len(got.Decisions) != 0 {
		t.Fatalf("after forged updates: %s %s with %d decisions; want pending at 0/2 and none", got.Status, got.Reasons[0].Progress, len(got.Decisions))
	}
	// The gateway's own decisions still count.
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
	s.decide(run, "approve", "t-carol", nil, http.StatusOK)
	s.waitFor(run, approval.StatusApplied)
}

// TestForgedStartThroughTemporalNeverApplies starts a run workflow straight
// through Temporal with no reasons (so nothing to approve), as a forger
// would: unsigned, then signed with another key. Both end failed without
// applying, and say why.
func TestForgedStartThroughTemporalNeverApplies(t *testing.T) {
	s := newStack(t, stackOptions{})
	real := s.createRun("staging-app", "t-alice", "add-only.json") // stores the plan
	s.waitFor(real, approval.StatusApplied)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	alice, _ := s.acts.Config.User("alice")
	ws, _ := s.acts.Config.Workspace("prod-network")
	otherKeys, _ := signing.Parse(strings.Repeat("y", 40))
	for i, keys := range []*signing.Keys{nil, otherKeys} {
		in := workflows.RunInput{
			Workspace: ws.Workspace, RequestedBy: alice.Identity, Message: "forged",
			Plan: workflows.InputPlan{PlanSummary: real.Plan.PlanSummary}, IssuedAt: time.Now().UTC(),
		}
		id := fmt.Sprintf("run-forged-%d", i)
		if keys != nil {
			payload, err := workflows.StartPayload(id, in)
			if err != nil {
				t.Fatal(err)
			}
			in.Signature = keys.Sign(payload)
		}
		wr, err := s.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: taskQueue}, workflows.RunWorkflowName, in)
		if err != nil {
			t.Fatal(err)
		}
		var final approval.Run
		if err := wr.Get(ctx, &final); err != nil {
			t.Fatalf("forged run: %v", err)
		}
		if final.Status != approval.StatusFailed || final.Apply != nil || !strings.Contains(final.Error, "gateway") {
			t.Errorf("forged start %d: %s, apply %+v, error %q; want failed, never applied, naming the gateway", i, final.Status, final.Apply, final.Error)
		}
	}
	if n := len(s.applied()); n != 1 {
		t.Errorf("apply ran %d times; want once (the real run only)", n)
	}
}

// TestIdempotencyKeysBelongToACallerAndARequest: a key another user already
// used, or the same key with another body or action, is a 422 and changes
// nothing; a true retry is answered as the first time and counts once.
func TestIdempotencyKeysBelongToACallerAndARequest(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	key := []string{"Idempotency-Key", "k-1"}
	s.decide(run, "approve", "t-bob", map[string]string{"comment": "ok"}, http.StatusOK, key...)
	s.decide(run, "approve", "t-bob", map[string]string{"comment": "ok"}, http.StatusOK, key...) // retry
	msg := s.decide(run, "approve", "t-carol", map[string]string{"comment": "ok"}, http.StatusUnprocessableEntity, key...).errorMessage(t)
	if !strings.Contains(msg, "Idempotency-Key") {
		t.Errorf("carol reusing bob's key: %q; want it to name the Idempotency-Key", msg)
	}
	s.decide(run, "approve", "t-bob", map[string]string{"comment": "changed my words"}, http.StatusUnprocessableEntity, key...)
	s.decide(run, "revoke", "t-bob", nil, http.StatusUnprocessableEntity, key...)
	got := s.get(run)
	if got.Reasons[0].Progress != "1/2" || len(got.Decisions) != 1 {
		t.Fatalf("after the retries: %s with %d decisions; want bob's one approval", got.Reasons[0].Progress, len(got.Decisions))
	}
	// Carol with a key of her own counts.
	s.decide(run, "approve", "t-carol", nil, http.StatusOK, "Idempotency-Key", "k-2")
	s.waitFor(run, approval.StatusApplied)

	// Creating: the same key with the same plan is the same run; with
	// another plan or message it is refused.
	runs := "/api/v1/workspaces/other/runs"
	body := map[string]any{"plan": readPlan(t, "add-only.json"), "message": "m"}
	first := s.call("POST", runs, "t-alice", body, "Idempotency-Key", "c-1")
	again := s.call("POST", runs, "t-alice", body, "Idempotency-Key", "c-1")
	var a, b gateway.RunView
	first.decode(t, &a)
	again.decode(t, &b)
	if first.status != http.StatusCreated || again.status != http.StatusCreated || a.ID != b.ID {
		t.Fatalf("retried create: %d %s and %d %s; want the same run twice", first.status, a.ID, again.status, b.ID)
	}
	other := map[string]any{"plan": readPlan(t, "prod-network.json"), "message": "m"}
	if r := s.call("POST", runs, "t-alice", other, "Idempotency-Key", "c-1"); r.status != http.StatusUnprocessableEntity {
		t.Errorf("another plan under a used create key: %d %s; want 422", r.status, r.body)
	}
	if r := s.call("POST", runs, "t-alice", map[string]any{"plan": readPlan(t, "add-only.json"), "message": "n"}, "Idempotency-Key", "c-1"); r.status != http.StatusUnprocessableEntity {
		t.Errorf("another message under a used create key: %d %s; want 422", r.status, r.body)
	}
}

// TestTerminatedRunsReadAsTerminated terminates a waiting run in Temporal:
// it reads as terminated with who and why, is listed as such, and is no
// longer counted as stuck.
func TestTerminatedRunsReadAsTerminated(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.client.TerminateWorkflow(ctx, run.ID, "", "operator cleanup"); err != nil {
		t.Fatal(err)
	}
	got := s.waitFor(run, approval.StatusTerminated)
	if got.Termination == nil || got.Termination.Reason != "operator cleanup" || got.Termination.By == "" {
		t.Errorf("termination %+v; want the reason and who terminated it", got.Termination)
	}
	var list struct {
		Runs []struct {
			ID     string          `json:"id"`
			Status approval.Status `json:"status"`
		} `json:"runs"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.call("GET", "/api/v1/workspaces/prod-network/runs", "t-victor", nil).decode(t, &list)
		if len(list.Runs) == 1 && list.Runs[0].Status == approval.StatusTerminated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listed %+v; want the run as terminated", list.Runs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.call("GET", "/api/v1/workspaces/prod-network/runs?status=pending_approval", "t-victor", nil).decode(t, &list)
	if len(list.Runs) != 0 {
		t.Errorf("pending runs %+v; want none", list.Runs)
	}
	stuck, err := s.runs.ListStuck(ctx, -time.Hour, time.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(stuck) != 0 {
		t.Errorf("stuck runs %+v; want none: a terminated run waits for nobody", stuck)
	}
}

// TestReadAccessPerWorkspace: a user no rule, step or escalation of a
// workspace names sees none of its runs but their own.
func TestReadAccessPerWorkspace(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	for _, path := range []string{s.runPath(run), s.runPath(run) + "/approvals", s.runPath(run) + "/approval-requirements"} {
		if r := s.call("GET", path, "t-dave", nil); r.status != http.StatusNotFound {
			t.Errorf("dave GET %s: %d; want 404", path, r.status)
		}
	}
	s.decide(run, "approve", "t-dave", nil, http.StatusNotFound)
	var list struct {
		Runs []json.RawMessage `json:"runs"`
	}
	s.call("GET", "/api/v1/workspaces/prod-network/runs", "t-dave", nil).decode(t, &list)
	if len(list.Runs) != 0 {
		t.Errorf("dave lists %d runs of prod-network; want none", len(list.Runs))
	}
	var wss struct {
		Workspaces []struct {
			Name string `json:"name"`
		} `json:"workspaces"`
	}
	s.call("GET", "/api/v1/workspaces", "t-dave", nil).decode(t, &wss)
	for _, ws := range wss.Workspaces {
		if ws.Name == "prod-network" {
			t.Errorf("dave sees prod-network in the workspace list")
		}
	}
	// Bob, named by its rule, and victor, a viewer, read it.
	for _, token := range []string{"t-bob", "t-victor", "t-erin"} {
		if r := s.call("GET", s.runPath(run), token, nil); r.status != http.StatusOK {
			t.Errorf("%s GET run: %d; want 200", token, r.status)
		}
	}
	// Dave reads a run of his own in a workspace that does not name him.
	own := s.createRun("prod-network", "t-dave", "prod-network.json")
	if r := s.call("GET", s.runPath(own), "t-dave", nil); r.status != http.StatusOK {
		t.Errorf("dave GET his own run: %d; want 200", r.status)
	}
}

// TestHostileRequestsGetClearErrors: run ids that name nothing, oversized
// text and bodies are 4xx with {"error": ...}, never a 5xx.
func TestHostileRequestsGetClearErrors(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	runs := "/api/v1/workspaces/prod-network/runs/"
	for _, id := range []string{"", "%00", "%0a", "%ff%fe", "run-%01x", strings.Repeat("r", 300), "%20"} {
		r := s.call("GET", runs+id, "t-victor", nil)
		if r.status != http.StatusNotFound {
			t.Errorf("GET run %q: %d %s; want 404", id, r.status, r.body)
			continue
		}
		r.errorMessage(t)
	}
	long := strings.Repeat("x", approval.MaxCommentBytes+1)
	if msg := s.decide(run, "approve", "t-bob", map[string]string{"comment": long}, http.StatusBadRequest).errorMessage(t); !strings.Contains(msg, "comment") {
		t.Errorf("long comment: %q; want it to name comment", msg)
	}
	if msg := s.decide(run, "cancel", "t-alice", map[string]string{"message": long}, http.StatusBadRequest).errorMessage(t); !strings.Contains(msg, "message") {
		t.Errorf("long cancel message: %q; want it to name message", msg)
	}
	r := s.call("POST", "/api/v1/workspaces/prod-network/runs", "t-alice", map[string]any{"plan": readPlan(t, "prod-network.json"), "message": long})
	if r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(t), "message") {
		t.Errorf("long run message: %d %s; want 400 naming message", r.status, r.body)
	}
	// A chunked body (no Content-Length) over 16 MiB is a 413.
	big := io.MultiReader(strings.NewReader(`{"plan": {"format_version": "1.2", "x": "`), bytes.NewReader(bytes.Repeat([]byte("a"), 16<<20)), strings.NewReader(`"}}`))
	req, _ := http.NewRequest("POST", s.url+"/api/v1/workspaces/prod-network/runs", io.NopCloser(big))
	req.Header.Set("Authorization", "Bearer t-alice")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !bytes.Contains(body, []byte(`"error"`)) {
		t.Errorf("chunked body over the limit: %d %s; want 413 with an error", resp.StatusCode, body)
	}
	if got := s.get(run); got.Status != approval.StatusPendingApproval || len(got.Decisions) != 0 {
		t.Errorf("run after hostile requests: %s with %d decisions; want it unchanged", got.Status, len(got.Decisions))
	}
}

// bigPlan is a plan of n resource changes in the shape `terraform show
// -json` prints, every tenth a delete, each with before and after values.
func bigPlan(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"format_version":"1.2","terraform_version":"1.9.8","resource_changes":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		actions, before := `["create"]`, `null`
		if i%10 == 0 {
			actions, before = `["delete"]`, fmt.Sprintf(`{"id":"sg-%08d","name":"web-%d"}`, i, i)
		}
		after := fmt.Sprintf(`{"name":"web-%d","cidr":"10.%d.%d.0/24"}`, i, i/256%256, i%256)
		if i%10 == 0 {
			after = `null`
		}
		fmt.Fprintf(&b, `{"address":"aws_security_group.web[%d]","mode":"managed","type":"aws_security_group","name":"web","provider_name":"registry.terraform.io/hashicorp/aws","change":{"actions":%s,"before":%s,"after":%s,"after_unknown":{},"before_sensitive":{},"after_sensitive":{}}}`,
			i, actions, before, after)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// TestFiftyThousandResourcePlanKeepsHistorySmall submits a plan of 50,000
// resource changes (about 13 MiB) through the API: it is accepted, and the
// run's history stays small because the resource list never enters it.
// Before, the workflow input carried every resource (and every user), and
// such a plan could not start at all.
func TestFiftyThousandResourcePlanKeepsHistorySmall(t *testing.T) {
	s := newStack(t, stackOptions{})
	planDoc := bigPlan(50_000)
	if len(planDoc) >= 16<<20 {
		t.Fatalf("plan is %d bytes; the test wants it under the 16 MiB body limit", len(planDoc))
	}
	r := s.call("POST", "/api/v1/workspaces/prod-network/runs", "t-alice",
		append(append([]byte(`{"message": "big", "plan": `), planDoc...), '}'))
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %.300s", r.status, r.body)
	}
	var run gateway.RunView
	r.decode(t, &run)
	if run.Plan.Destroys != 5000 || len(run.Plan.Resources) != 50_000 {
		t.Fatalf("plan %+v with %d resources; want 5000 destroys of 50,000", run.Plan.PlanSummary, len(run.Plan.Resources))
	}
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
	s.decide(run, "approve", "t-carol", nil, http.StatusOK)
	s.waitFor(run, approval.StatusApplied)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var events, size int
	it := s.client.GetWorkflowHistory(ctx, run.ID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		events++
		size += proto.Size(ev)
	}
	t.Logf("50,000-resource plan (%d bytes): history of %d events, %d bytes", len(planDoc), events, size)
	if size > 64<<10 {
		t.Errorf("history is %d bytes; want under 64 KiB for any plan size", size)
	}
}
