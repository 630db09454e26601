package tests

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

// TestErrorStatuses walks every error the API promises, in the order its
// checks run, and then shows that none of them changed the run.
func TestErrorStatuses(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	other := s.createRun("other", "t-alice", "add-only.json")
	// bob may approve this one, but not through another workspace's path.
	elsewhere := s.createRun("long", "t-alice", "add-only.json")
	finished := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(finished, "reject", "t-bob", map[string]string{"comment": "no"}, http.StatusOK)
	s.waitFor(finished, approval.StatusRejected)

	runs := "/api/v1/workspaces/prod-network/runs"
	path := s.runPath(run)
	plan := string(readPlan(t, "prod-network.json"))
	for _, tc := range []struct {
		name         string
		method, path string
		token        string
		body         any
		want         int
		mention      string
	}{
		// 401 comes first, even for things that do not exist.
		{"no token", "GET", path, "", nil, 401, "bearer"},
		{"bad token", "GET", path, "nope", nil, 401, "invalid token"},
		{"no token on unknown workspace", "GET", "/api/v1/workspaces/nope/runs", "", nil, 401, ""},
		// 404 next.
		{"unknown workspace", "GET", "/api/v1/workspaces/nope/runs", "t-alice", nil, 404, "workspace"},
		{"unknown run", "GET", runs + "/run-missing", "t-alice", nil, 404, "run-missing"},
		{"run of another workspace", "GET", runs + "/" + other.ID, "t-alice", nil, 404, "not found"},
		{"run of a workspace that does not name the caller", "GET", path, "t-dave", nil, 404, "not found"},
		{"approve where the workspace does not name the caller", "POST", path + "/approve", "t-dave", `{}`, 404, "not found"},
		{"approve, through a workspace the caller reads, a run of another they approve", "POST", runs + "/" + elsewhere.ID + "/approve", "t-bob", `{}`, 404, "not found"},
		{"reject a run of another workspace", "POST", runs + "/" + other.ID + "/reject", "t-bob", `{"comment": "x"}`, 404, "not found"},
		{"approve unknown run with a bad body", "POST", runs + "/run-missing/approve", "t-bob", "{", 404, "not found"},
		{"unknown route", "GET", "/api/v1/nothing", "t-alice", nil, 404, "not found"},
		{"unknown top-level route", "GET", "/nothing", "", nil, 404, "not found"},
		// 400: the body, naming the field.
		{"malformed JSON", "POST", runs, "t-alice", `{"plan": `, 400, "body"},
		{"unknown field", "POST", runs, "t-alice", `{"plan": ` + plan + `, "colour": "red"}`, 400, "colour"},
		{"wrong type", "POST", runs, "t-alice", `{"plan": ` + plan + `, "message": 7}`, 400, "message"},
		{"missing plan", "POST", runs, "t-alice", `{"message": "hi"}`, 400, "plan"},
		{"empty body", "POST", runs, "t-alice", ``, 400, "body"},
		{"errored plan", "POST", runs, "t-alice", `{"plan": {"format_version": "1.2", "errored": true}}`, 400, "errored"},
		{"plan of an unknown format", "POST", runs, "t-alice", `{"plan": {"format_version": "7.0"}}`, 400, "plan"},
		{"plan that is not an object", "POST", runs, "t-alice", `{"plan": [1, 2]}`, 400, "plan"},
		{"plan whose actions cannot be classified", "POST", runs, "t-alice",
			`{"plan": {"format_version": "1.2", "resource_changes": [{"address": "aws_iam_role.x", "mode": "managed", "type": "aws_iam_role", "name": "x", "change": {"actions": ["update", "delete"]}}]}}`,
			400, "aws_iam_role.x"},
		{"plan with an action nobody knows", "POST", runs, "t-alice",
			`{"plan": {"format_version": "1.2", "resource_changes": [{"address": "aws_s3_bucket.b", "mode": "managed", "type": "aws_s3_bucket", "name": "b", "change": {"actions": ["obliterate"]}}]}}`,
			400, "aws_s3_bucket.b"},
		{"bad status filter", "GET", runs + "?status=stuck", "t-alice", nil, 400, "status"},
		{"reject without comment", "POST", path + "/reject", "t-bob", `{}`, 400, "comment"},
		{"reject with blank comment", "POST", path + "/reject", "t-bob", `{"comment": "  "}`, 400, "comment"},
		{"cancel without message", "POST", path + "/cancel", "t-alice", `{}`, 400, "message"},
		{"cancel with comment instead of message", "POST", path + "/cancel", "t-alice", `{"comment": "x"}`, 400, "message"},
		{"reject needs a comment even from a viewer", "POST", path + "/reject", "t-victor", `{}`, 400, "comment"},
		{"bad idempotency key", "POST", path + "/approve", "t-bob", `{}`, 400, "Idempotency-Key"},
		// 403: who may not, saying which rule refused.
		{"self-approval", "POST", path + "/approve", "t-alice", `{}`, 403, "self-approval"},
		{"viewer approves", "POST", path + "/approve", "t-victor", `{}`, 403, "viewers"},
		{"admin approves", "POST", path + "/approve", "t-erin", `{}`, 403, "admins"},
		{"reader who is no approver approves", "POST", path + "/approve", "t-sam", `{}`, 403, "not an approver"},
		{"viewer cancels", "POST", path + "/cancel", "t-victor", `{"message": "x"}`, 403, "viewers"},
		{"reader who is no approver cancels", "POST", path + "/cancel", "t-sam", `{"message": "x"}`, 403, "only the requester"},
		{"viewer starts a run", "POST", runs, "t-victor", `{"plan": ` + plan + `}`, 403, "viewers"},
		{"viewer approves a finished run", "POST", s.runPath(finished) + "/approve", "t-victor", `{}`, 403, "viewers"},
		// 409: the run does not await that decision.
		{"approve a rejected run", "POST", s.runPath(finished) + "/approve", "t-carol", `{}`, 409, "rejected"},
		{"cancel a rejected run", "POST", s.runPath(finished) + "/cancel", "t-alice", `{"message": "x"}`, 409, "rejected"},
		{"reject a rejected run", "POST", s.runPath(finished) + "/reject", "t-carol", `{"comment": "x"}`, 409, ""},
		// Echo's own errors are JSON too.
		{"method not allowed", "DELETE", path, "t-alice", nil, 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.name == "bad idempotency key" {
				headers = []string{"Idempotency-Key", strings.Repeat("k", 201)}
			}
			r := s.call(tc.method, tc.path, tc.token, tc.body, headers...)
			if r.status != tc.want {
				t.Fatalf("got %d %s; want %d", r.status, r.body, tc.want)
			}
			msg := r.errorMessage(t)
			if !strings.Contains(strings.ToLower(msg), strings.ToLower(tc.mention)) {
				t.Errorf("error %q does not mention %q", msg, tc.mention)
			}
		})
	}

	t.Run("body too large", func(t *testing.T) {
		big := `{"message": "` + strings.Repeat("x", 17<<20) + `"}`
		r := s.call("POST", runs, "t-alice", big)
		if r.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("got %d; want 413", r.status)
		}
		r.errorMessage(t)
	})

	t.Run("nothing changed", func(t *testing.T) {
		got := s.get(run)
		if got.Status != approval.StatusPendingApproval || len(got.Decisions) != 0 || got.Reasons[0].Progress != "0/2" {
			t.Errorf("run after the errors: %s, %d decisions, %s; want untouched", got.Status, len(got.Decisions), got.Reasons[0].Progress)
		}
		for _, r := range []gateway.RunView{other, elsewhere} {
			if got := s.get(r); got.Status != approval.StatusPendingApproval || len(got.Decisions) != 0 {
				t.Errorf("run %s of workspace %s after the errors: %s, %d decisions; want untouched", r.ID, r.Workspace, got.Status, len(got.Decisions))
			}
		}
		if lines := s.applied(); len(lines) != 0 {
			t.Errorf("apply ran: %q", lines)
		}
	})
}
