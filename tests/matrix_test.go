package tests

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
)

// matrixActor is who stands for a row of README's "Who may do what" table
// in the test config's workspace prod-network (its rule names the group
// platform; allow_bypass is on).
var matrixActor = map[string]string{
	"a user a reason names": "t-bob",    // platform approver
	"the requester":         "t-alice",  // requests every run below
	"`admin` no reason":     "t-erin",   // admin, in no group
	"`viewer`":              "t-victor", // viewer in platform
	"anyone else":           "t-dave",   // security: named by no reason of prod-network
}

// readmeMatrix reads the table from README.md: the row label of each actor
// and, per column header, the cell.
func readmeMatrix(t *testing.T) (headers []string, rows map[string][]string) {
	t.Helper()
	f, err := os.Open("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows = map[string][]string{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "### Who may do what":
			in = true
			continue
		case !in:
			continue
		case strings.HasPrefix(line, "### "):
			return headers, rows
		case !strings.HasPrefix(line, "|"):
			if len(rows) > 0 {
				return headers, rows
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case headers == nil:
			headers = cells[1:]
		case strings.HasPrefix(cells[0], "---"):
		default:
			rows[cells[0]] = cells[1:]
		}
	}
	t.Fatal("README has no \"Who may do what\" table")
	return nil, nil
}

// TestAuthorizationMatrixIsTheReadmes: every actor of README's table tries
// every action on a run of their own, through the API; the table's "yes"
// must succeed and everything else must be refused with a 4xx that changes
// nothing. The table is read from README itself, so the two cannot drift.
func TestAuthorizationMatrixIsTheReadmes(t *testing.T) {
	s := newStack(t, stackOptions{})
	headers, rows := readmeMatrix(t)
	if len(rows) != len(matrixActor) {
		t.Fatalf("README's table has %d rows; the test knows %d actors", len(rows), len(matrixActor))
	}
	revised := json.RawMessage(strings.Replace(string(readPlan(t, "prod-network.json")), `"actions": ["update"]`, `"actions": ["no-op"]`, 1))
	type attempt struct {
		path string
		body any
	}
	// Each column becomes the calls that make up its action.
	actions := map[string][]attempt{
		"approve / reject / request changes": {
			{"approve", nil}, {"reject", map[string]string{"comment": "no"}}, {"request-changes", map[string]string{"comment": "split it"}},
		},
		"revoke own approval": {{"revoke", map[string]string{"comment": "on second thought"}}},
		"cancel":              {{"cancel", map[string]string{"message": "not now"}}},
		"bypass":              {{"bypass", map[string]string{"justification": "incident 42"}}},
		"revise the plan":     {{"plan", map[string]any{"plan": revised}}},
		"start a run":         {{"", nil}},
	}
	for label, cells := range rows {
		token := ""
		for prefix, tok := range matrixActor {
			if strings.HasPrefix(label, prefix) {
				token = tok
			}
		}
		if token == "" {
			t.Fatalf("README row %q: the test has no actor for it", label)
		}
		for i, header := range headers {
			calls, ok := actions[header]
			if !ok {
				t.Fatalf("README column %q: the test has no action for it", header)
			}
			allowed := strings.HasPrefix(cells[i], "yes")
			for _, call := range calls {
				if call.path == "" {
					r := s.call("POST", "/api/v1/workspaces/prod-network/runs", token, map[string]any{"plan": readPlan(t, "prod-network.json")})
					if got := r.status == http.StatusCreated; got != allowed || r.status >= 500 {
						t.Errorf("%s may start a run: README says %q, the API answered %d %s", token, cells[i], r.status, r.body)
					}
					continue
				}
				run := s.createRun("prod-network", "t-alice", "prod-network.json")
				if call.path == "revoke" && allowed {
					s.decide(run, "approve", token, nil, http.StatusOK)
				}
				before := s.get(run)
				r := s.call("POST", s.runPath(run)+"/"+call.path, token, call.body)
				got := r.status == http.StatusOK
				if got != allowed || r.status >= 500 {
					t.Errorf("%s %s: README says %q, the API answered %d %s", token, call.path, cells[i], r.status, r.body)
					continue
				}
				if !allowed {
					if r.status != http.StatusForbidden && r.status != http.StatusNotFound && r.status != http.StatusConflict {
						t.Errorf("%s %s refused with %d; want 403, 404 or 409", token, call.path, r.status)
					}
					after := s.get(run)
					if after.Status != before.Status || len(after.Decisions) != len(before.Decisions) || after.Plan.SHA256 != before.Plan.SHA256 {
						t.Errorf("%s %s was refused but changed the run: %s/%d → %s/%d", token, call.path,
							before.Status, len(before.Decisions), after.Status, len(after.Decisions))
					}
				}
			}
		}
	}
}
