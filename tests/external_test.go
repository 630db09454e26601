package tests

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

// itsmServer stands in for ServiceNow or Jira over real HTTP. It checks the
// credentials of every request, records what Gatehouse sent, and serves
// the ticket as the test sets it.
type itsmServer struct {
	t    *testing.T
	url  string
	auth string
	mu   sync.Mutex
	// requests are "METHOD path" of every request, in order; bodies the
	// decoded JSON bodies of the writes, by "METHOD path".
	requests []string
	bodies   map[string][]map[string]any
	// ticket is what a read of the ticket returns.
	ticket map[string]any
	bad    []string
}

func newITSMServer(t *testing.T, auth string, serve func(s *itsmServer, w http.ResponseWriter, r *http.Request, body map[string]any)) *itsmServer {
	s := &itsmServer{t: t, auth: auth, bodies: map[string][]map[string]any{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		key := r.Method + " " + r.URL.Path
		s.requests = append(s.requests, key)
		if r.Header.Get("Authorization") != s.auth {
			s.bad = append(s.bad, key+": authorization "+r.Header.Get("Authorization"))
			http.Error(w, `{"error":{"message":"User Not Authenticated"}}`, http.StatusUnauthorized)
			return
		}
		var body map[string]any
		if data, _ := io.ReadAll(r.Body); len(data) > 0 {
			if err := json.Unmarshal(data, &body); err != nil {
				s.bad = append(s.bad, key+": body is not JSON")
				http.Error(w, "bad json", http.StatusBadRequest)
				return
			}
			s.bodies[key] = append(s.bodies[key], body)
		}
		w.Header().Set("Content-Type", "application/json")
		serve(s, w, r, body)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *itsmServer) written(key string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies[key]
}

func (s *itsmServer) setTicket(fields map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range fields {
		s.ticket[k] = v
	}
}

const snSysID = "a9e9c33dc61122760072455df62663d2"

// newServiceNow serves the Table API calls Gatehouse makes on change_request.
func newServiceNow(t *testing.T) *itsmServer {
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte("gatehouse:sn-pass"))
	return newITSMServer(t, auth, func(s *itsmServer, w http.ResponseWriter, r *http.Request, body map[string]any) {
		const table = "/api/now/table/change_request"
		switch {
		case r.Method == "GET" && r.URL.Path == table:
			// Looking for the run's change request before creating one.
			var found []any
			if s.ticket != nil && strings.Contains(r.URL.Query().Get("sysparm_query"), "correlation_id="+s.ticket["correlation_id"].(string)) {
				found = append(found, s.ticket)
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"result": found})
		case r.Method == "POST" && r.URL.Path == table:
			s.ticket = map[string]any{
				"sys_id": snSysID, "number": "CHG0030001", "correlation_id": body["correlation_id"],
				"approval": "requested", "state": "-4", "sys_updated_by": "gatehouse", "sys_updated_on": "2026-12-02 10:00:00",
			}
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]any{"result": s.ticket})
		case r.URL.Path == table+"/"+snSysID && r.Method == "GET":
			_ = json.NewEncoder(w).Encode(map[string]any{"result": s.ticket})
		case r.URL.Path == table+"/"+snSysID && r.Method == "PATCH":
			s.ticket["state"] = body["state"]
			_ = json.NewEncoder(w).Encode(map[string]any{"result": s.ticket})
		default:
			s.bad = append(s.bad, "unexpected "+r.Method+" "+r.URL.String())
			http.NotFound(w, r)
		}
	})
}

func hexHMAC(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// externalWorkspaces are the external workspaces of these tests, on the
// servers given; gate-only, so an approved run ends approved.
func externalWorkspaces(sn, jira, hook string) string {
	return `  - name: cab
    environment: production
    timeout: 1h
    rules:
      - {name: destroys-need-two, when: {destroys_gt: 0}, approvers: {groups: [platform]}, min_approvals: 2}
    external_approval:
      provider: servicenow
      url: ` + sn + `
      auth: {username: gatehouse, password: sn-pass}
      callback_secret: sn-secret
      poll_every: "0"
      fields: {assignment_group: CAB, category: Software}
  - name: jira-cab
    timeout: 1h
    external_approval:
      provider: jira
      url: ` + jira + `
      auth: {token: jira-pat}
      callback_secret: jira-secret
      poll_every: "0"
      project: CHG
      issue_type: Change
      approved_statuses: [Approved]
      rejected_statuses: [Declined, Canceled]
      cancel_transition: "31"
  - name: hooked-cab
    timeout: 1h
    external_approval:
      provider: webhook
      url: ` + hook + `
      callback_secret: hook-cab-secret
public_url: http://gatehouse.test
`
}

// waitForTicket polls the run until its ticket is open.
func (s *stack) waitForTicket(run gateway.RunView) gateway.RunView {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := s.get(run)
		if got.External != nil && got.External.ID != "" {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("run %s opened no ticket: %+v", run.ID, got.External)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *stack) callback(path, header, secret string, body []byte) response {
	s.t.Helper()
	return s.call("POST", path, "", body, header, hexHMAC(secret, body))
}

func snBody(t *testing.T, runID, sysID, approvalState, by, comments string) []byte {
	t.Helper()
	data, err := json.Marshal(map[string]string{
		"sys_id": sysID, "number": "CHG0030001", "correlation_id": runID, "approval": approvalState,
		"state": "-4", "sys_updated_by": by, "comments": comments,
	})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestServiceNowApprovesByCallback(t *testing.T) {
	sn := newServiceNow(t)
	s := newStack(t, stackOptions{workspaces: externalWorkspaces(sn.url, "http://jira.invalid", "http://hook.invalid")})
	run := s.createRun("cab", "t-alice", "prod-network.json")
	run = s.waitForTicket(run)

	// The change request Gatehouse opened.
	created := sn.written("POST /api/now/table/change_request")
	if len(created) != 1 {
		t.Fatalf("change requests created: %d; want 1 (requests %v, bad %v)", len(created), sn.requests, sn.bad)
	}
	cr := created[0]
	for k, want := range map[string]string{"correlation_id": run.ID, "correlation_display": "Gatehouse", "assignment_group": "CAB", "category": "Software"} {
		if cr[k] != want {
			t.Errorf("change request %s = %v; want %q", k, cr[k], want)
		}
	}
	desc, _ := cr["description"].(string)
	for _, want := range []string{"http://gatehouse.test/", run.ID, "Deadline:", "to destroy"} {
		if !strings.Contains(desc, want) {
			t.Errorf("description lacks %q:\n%s", want, desc)
		}
	}
	if run.Status != approval.StatusPendingApproval || run.External.Ref != "CHG0030001" || run.External.ID != snSysID || !strings.Contains(run.External.Link, snSysID) {
		t.Fatalf("run %s external %+v", run.Status, run.External)
	}
	for _, r := range run.Reasons {
		if r.State != approval.ReasonOnHold {
			t.Errorf("reason %s is %s; want on_hold", r.ID, r.State)
		}
	}
	// The operator finds the run from the ticket, once visibility has it:
	// Temporal writes search attributes after the workflow task, so a
	// search may trail the run's state by a moment.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		id, _, err := s.runs.FindByTicket(t.Context(), "cab", "CHG0030001")
		if err == nil && id == run.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("find by ticket: %q %v", id, err)
			break
		}
	}

	path := "/api/v1/external/servicenow/cab/callback"
	before := s.get(run)
	// Internal decisions are refused, saying where to decide.
	r := s.decide(run, "approve", "t-bob", map[string]any{}, http.StatusConflict)
	if !strings.Contains(r.errorMessage(t), "ServiceNow CHG0030001") {
		t.Errorf("internal approve: %s", r.body)
	}
	// Forged, unknown run, another ticket, nothing decided: no change.
	if r := s.call("POST", path, "", snBody(t, run.ID, snSysID, "approved", "mallory", ""), headerSN, "sha256="+strings.Repeat("0", 64)); r.status != http.StatusUnauthorized {
		t.Errorf("forged: %d %s", r.status, r.body)
	}
	if r := s.callback(path, headerSN, "sn-secret", snBody(t, "run-0000000000000000", snSysID, "approved", "jane", "")); r.status != http.StatusNotFound {
		t.Errorf("unknown run: %d %s", r.status, r.body)
	}
	if r := s.callback(path, headerSN, "sn-secret", snBody(t, run.ID, "ffff", "approved", "jane", "")); r.status != http.StatusConflict {
		t.Errorf("another ticket: %d %s", r.status, r.body)
	}
	if r := s.callback(path, headerSN, "sn-secret", snBody(t, run.ID, snSysID, "requested", "jane", "")); r.status != http.StatusOK {
		t.Errorf("requested: %d %s", r.status, r.body)
	}
	if r := s.call("POST", path, "", "not json", headerSN, hexHMAC("sn-secret", []byte("not json"))); r.status != http.StatusBadRequest {
		t.Errorf("signed garbage: %d %s", r.status, r.body)
	}
	if after := s.get(run); after.Status != before.Status || len(after.Decisions) != len(before.Decisions) {
		t.Fatalf("a refused callback changed the run: %s, %d decisions", after.Status, len(after.Decisions))
	}

	// The approval, with who and why.
	approve := snBody(t, run.ID, snSysID, "approved", "jane.doe", "CAB approved for tonight")
	if r := s.callback(path, headerSN, "sn-secret", approve); r.status != http.StatusAccepted {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	done := s.waitFor(run, approval.StatusApproved)
	last := done.Decisions[len(done.Decisions)-1]
	if last.UserID != "servicenow:jane.doe" || last.Comment != "CAB approved for tonight" || last.Channel != "servicenow" {
		t.Errorf("decision %+v", last)
	}
	// A repeat is fine; another decision after it is a conflict.
	if r := s.callback(path, headerSN, "sn-secret", approve); r.status != http.StatusOK {
		t.Errorf("repeat: %d %s", r.status, r.body)
	}
	if r := s.callback(path, headerSN, "sn-secret", snBody(t, run.ID, snSysID, "rejected", "joe", "no")); r.status != http.StatusConflict {
		t.Errorf("late rejection: %d %s", r.status, r.body)
	}
	if len(sn.bad) > 0 {
		t.Errorf("ServiceNow saw bad requests: %v", sn.bad)
	}
}

const headerSN = "X-Gatehouse-Signature"

func TestServiceNowRejectionAndAdminCancel(t *testing.T) {
	sn := newServiceNow(t)
	s := newStack(t, stackOptions{workspaces: externalWorkspaces(sn.url, "http://jira.invalid", "http://hook.invalid")})
	path := "/api/v1/external/servicenow/cab/callback"

	run := s.waitForTicket(s.createRun("cab", "t-alice", "prod-network.json"))
	if r := s.callback(path, headerSN, "sn-secret", snBody(t, run.ID, snSysID, "rejected", "cab.chair", "outside the change window")); r.status != http.StatusAccepted {
		t.Fatalf("reject: %d %s", r.status, r.body)
	}
	got := s.waitFor(run, approval.StatusCancelled)
	if last := got.Decisions[len(got.Decisions)-1]; last.UserID != "servicenow:cab.chair" || last.Comment != "outside the change window" {
		t.Errorf("decision %+v", last)
	}

	// An admin cancels the next run here; Gatehouse cancels its ticket.
	run = s.waitForTicket(s.createRun("cab", "t-alice", "prod-network.json"))
	s.decide(run, "cancel", "t-erin", map[string]any{"message": "superseded by the emergency fix"}, http.StatusOK)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got = s.get(run)
		if got.External != nil && got.External.Withdrawn != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ticket was not withdrawn: %+v", got.External)
		}
		time.Sleep(50 * time.Millisecond)
	}
	patched := sn.written("PATCH /api/now/table/change_request/" + snSysID)
	if got.Status != approval.StatusCancelled || len(patched) == 0 || patched[len(patched)-1]["state"] != "4" || got.External.Withdrawn.Error != "" {
		t.Errorf("status %s, patches %v, withdrawn %+v", got.Status, patched, got.External.Withdrawn)
	}
}

// jiraUpdated is Jira's jira:issue_updated delivery (the shape of
// activities/itsm/testdata), for issue key moved to status to.
func jiraUpdated(t *testing.T, key, runID, field, to string) []byte {
	t.Helper()
	data, err := os.ReadFile("../activities/itsm/testdata/jira-issue-updated.json")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(data, &body); err != nil {
		t.Fatal(err)
	}
	issue := body["issue"].(map[string]any)
	issue["key"] = key
	issue["fields"].(map[string]any)["labels"] = []string{"gatehouse-" + runID}
	changelog := body["changelog"].(map[string]any)
	var items []any
	for _, it := range changelog["items"].([]any) {
		item := it.(map[string]any)
		if item["field"] != "status" {
			items = append(items, item)
			continue
		}
		if field == "status" {
			item["toString"] = to
			issue["fields"].(map[string]any)["status"].(map[string]any)["name"] = to
			items = append(items, item)
		}
	}
	if field != "status" {
		items = append(items, map[string]any{"field": field, "fieldtype": "jira", "fieldId": field, "fromString": "old", "toString": to})
	}
	changelog["items"] = items
	out, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func newJira(t *testing.T) *itsmServer {
	return newITSMServer(t, "Bearer jira-pat", func(s *itsmServer, w http.ResponseWriter, r *http.Request, body map[string]any) {
		switch {
		case r.Method == "GET" && r.URL.Path == "/rest/api/2/search":
			_ = json.NewEncoder(w).Encode(map[string]any{"issues": []any{}, "total": 0})
		case r.Method == "POST" && r.URL.Path == "/rest/api/2/issue":
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]any{"id": "10042", "key": "CHG-42", "self": s.url + "/rest/api/2/issue/10042"})
		case r.Method == "POST" && (r.URL.Path == "/rest/api/2/issue/CHG-42/comment" || r.URL.Path == "/rest/api/2/issue/CHG-42/transitions"):
			w.WriteHeader(http.StatusNoContent)
		default:
			s.bad = append(s.bad, "unexpected "+r.Method+" "+r.URL.String())
			http.NotFound(w, r)
		}
	})
}

func TestJiraApprovesByWebhook(t *testing.T) {
	jira := newJira(t)
	s := newStack(t, stackOptions{workspaces: externalWorkspaces("http://sn.invalid", jira.url, "http://hook.invalid")})
	run := s.waitForTicket(s.createRun("jira-cab", "t-alice", "add-only.json"))
	issues := jira.written("POST /rest/api/2/issue")
	if len(issues) != 1 {
		t.Fatalf("issues created: %d (%v)", len(issues), jira.bad)
	}
	fields := issues[0]["fields"].(map[string]any)
	if fields["project"].(map[string]any)["key"] != "CHG" || fields["issuetype"].(map[string]any)["name"] != "Change" ||
		!strings.Contains(strings.Join(toStrings(fields["labels"]), ","), "gatehouse-"+run.ID) {
		t.Errorf("issue fields %v", fields)
	}
	if run.External.Ref != "CHG-42" || !strings.HasSuffix(run.External.Link, "/browse/CHG-42") {
		t.Errorf("external %+v", run.External)
	}
	path := "/api/v1/external/jira/jira-cab/callback"
	hdr := "X-Hub-Signature"
	// An edit that is not a status change decides nothing.
	if r := s.callback(path, hdr, "jira-secret", jiraUpdated(t, "CHG-42", run.ID, "summary", "new title")); r.status != http.StatusOK {
		t.Errorf("edit: %d %s", r.status, r.body)
	}
	if r := s.callback(path, hdr, "wrong-secret", jiraUpdated(t, "CHG-42", run.ID, "status", "Approved")); r.status != http.StatusUnauthorized {
		t.Errorf("forged: %d %s", r.status, r.body)
	}
	if r := s.callback(path, hdr, "jira-secret", jiraUpdated(t, "CHG-99", "run-0000000000000000", "status", "Approved")); r.status != http.StatusNotFound {
		t.Errorf("unknown issue: %d %s", r.status, r.body)
	}
	if got := s.get(run); got.Status != approval.StatusPendingApproval {
		t.Fatalf("status %s after refusals", got.Status)
	}
	approved := jiraUpdated(t, "CHG-42", run.ID, "status", "Approved")
	if r := s.call("POST", path, "", approved, hdr, hexHMAC("jira-secret", approved), "X-Atlassian-Webhook-Identifier", "wh-1"); r.status != http.StatusAccepted {
		t.Fatalf("approve: %d %s", r.status, r.body)
	}
	got := s.waitFor(run, approval.StatusApproved)
	if last := got.Decisions[len(got.Decisions)-1]; !strings.HasPrefix(string(last.UserID), "jira:") || last.Channel != "jira" {
		t.Errorf("decision %+v", last)
	}
	// Jira retries the delivery: counted once.
	if r := s.call("POST", path, "", approved, hdr, hexHMAC("jira-secret", approved), "X-Atlassian-Webhook-Identifier", "wh-1"); r.status != http.StatusOK {
		t.Errorf("retry: %d %s", r.status, r.body)
	}
}

func toStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestWebhookApproverCallsBack(t *testing.T) {
	var mu sync.Mutex
	var requests []map[string]any
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts := r.Header.Get("X-Gatehouse-Timestamp")
		mac := hmac.New(sha256.New, []byte("hook-cab-secret"))
		mac.Write([]byte(ts + "." + string(body)))
		if r.Header.Get("X-Gatehouse-Signature") != "sha256="+hex.EncodeToString(mac.Sum(nil)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var m map[string]any
		_ = json.Unmarshal(body, &m)
		mu.Lock()
		requests = append(requests, m)
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]string{"id": "APR-7", "url": "https://approvals.example.com/APR-7"})
	}))
	t.Cleanup(receiver.Close)
	s := newStack(t, stackOptions{workspaces: externalWorkspaces("http://sn.invalid", "http://jira.invalid", receiver.URL)})
	run := s.waitForTicket(s.createRun("hooked-cab", "t-alice", "add-only.json"))
	mu.Lock()
	if len(requests) != 1 {
		t.Fatalf("webhook requests: %d", len(requests))
	}
	callbackURL, _ := requests[0]["callback_url"].(string)
	mu.Unlock()
	path, ok := strings.CutPrefix(callbackURL, "http://gatehouse.test")
	if !ok || !strings.HasPrefix(path, "/api/v1/external/webhook/callback/") {
		t.Fatalf("callback_url %q", callbackURL)
	}
	if run.External.Ref != "APR-7" || run.External.Link != "https://approvals.example.com/APR-7" || run.External.TokenSHA256 != "" {
		t.Errorf("external %+v (the token digest must not be shown)", run.External)
	}
	body := []byte(`{"decision":"approved","actor":"change-board","comment":"ok","decided_at":"2026-12-02T10:00:00Z"}`)
	if r := s.call("POST", "/api/v1/external/webhook/callback/"+strings.Repeat("x", 43), "", body); r.status != http.StatusUnauthorized {
		t.Errorf("forged token: %d %s", r.status, r.body)
	}
	// The ticket search attribute may lag the run by a moment.
	var r response
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if r = s.call("POST", path, "", body); r.status != http.StatusUnauthorized || time.Now().After(deadline) {
			break
		}
	}
	if r.status != http.StatusAccepted {
		t.Fatalf("callback: %d %s", r.status, r.body)
	}
	got := s.waitFor(run, approval.StatusApproved)
	if last := got.Decisions[len(got.Decisions)-1]; last.UserID != "webhook:change-board" || last.Comment != "ok" {
		t.Errorf("decision %+v", last)
	}
}
