package itsm

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"
)

// fakeJira is the part of Jira's REST API v2 Gatehouse uses, checking what
// it is sent.
type fakeJira struct {
	t        *testing.T
	mu       sync.Mutex
	auth     func(*http.Request) bool
	issues   map[string]map[string]any // created "fields", by key
	calls    []string
	comments []string
	moves    []string
	failOn   string // a path answered 500
	cloud    bool   // /search is gone, as on Jira Cloud since 2025
}

func (f *fakeJira) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := f.t
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r.Method+" "+r.URL.Path)
	if !f.auth(r) {
		t.Errorf("%s %s: Authorization %q", r.Method, r.URL.Path, r.Header.Get("Authorization"))
		writeJSON(w, http.StatusUnauthorized, map[string]any{"errorMessages": []string{"You are not authenticated."}})
		return
	}
	if r.Header.Get("Accept") != "application/json" || r.Header.Get("User-Agent") != "gatehouse/1" {
		t.Errorf("%s %s: Accept %q User-Agent %q", r.Method, r.URL.Path, r.Header.Get("Accept"), r.Header.Get("User-Agent"))
	}
	if r.Method == http.MethodPost && r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("POST %s: Content-Type %q", r.URL.Path, r.Header.Get("Content-Type"))
	}
	if r.URL.Path == f.failOn {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"errorMessages": []string{"Internal server error"}})
		return
	}
	q := r.URL.Query()
	switch {
	case f.cloud && r.Method == http.MethodGet && r.URL.Path == "/rest/api/2/search":
		writeJSON(w, http.StatusGone, map[string]any{"errorMessages": []string{"The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."}, "errors": map[string]any{}})
	case r.Method == http.MethodGet && (r.URL.Path == "/rest/api/2/search" || f.cloud && r.URL.Path == "/rest/api/2/search/jql"):
		if q.Get("fields") != "key" || q.Get("maxResults") != "1" {
			t.Errorf("search: query %v", q)
		}
		issues := []map[string]any{}
		for key, fields := range f.issues {
			if `labels = "`+fields["labels"].([]any)[0].(string)+`"` == q.Get("jql") {
				issues = append(issues, map[string]any{"expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields", "id": "10042", "self": "https://acme.atlassian.net/rest/api/2/issue/10042", "key": key})
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"expand": "schema,names", "startAt": 0, "maxResults": 1, "total": len(issues), "issues": issues})
	case r.Method == http.MethodPost && r.URL.Path == "/rest/api/2/issue":
		var body struct {
			Fields map[string]any `json:"fields"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("create: %v", err)
		}
		key := "CHG-42"
		f.issues[key] = body.Fields
		writeJSON(w, http.StatusCreated, map[string]string{"id": "10042", "key": key, "self": "https://acme.atlassian.net/rest/api/2/issue/10042"})
	case r.Method == http.MethodGet && r.URL.Path == "/rest/api/2/issue/CHG-42":
		if q.Get("fields") != "status,updated" || q.Get("expand") != "changelog" {
			t.Errorf("read: query %v", q)
		}
		data, err := os.ReadFile("testdata/jira-issue-changelog.json")
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		_, _ = w.Write(data)
	case r.Method == http.MethodPost && r.URL.Path == "/rest/api/2/issue/CHG-42/comment":
		var body map[string]string
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("comment: %v", err)
		}
		f.comments = append(f.comments, body["body"])
		writeJSON(w, http.StatusCreated, map[string]any{"id": "10100", "body": body["body"]})
	case r.Method == http.MethodPost && r.URL.Path == "/rest/api/2/issue/CHG-42/transitions":
		var body struct {
			Transition struct {
				ID string `json:"id"`
			} `json:"transition"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("transition: %v", err)
		}
		f.moves = append(f.moves, body.Transition.ID)
		w.WriteHeader(http.StatusNoContent)
	default:
		t.Errorf("unexpected %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestJiraOpenReadCancel(t *testing.T) {
	fake := &fakeJira{t: t, issues: map[string]map[string]any{},
		auth: func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer pat-123" }}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	j := &Jira{BaseURL: srv.URL, Auth: Auth{Token: "pat-123"}, Project: "CHG", IssueType: "Change",
		Approved: []string{"Approved"}, Rejected: []string{"Declined"}, CancelTransition: "31", Client: srv.Client()}
	ctx := context.Background()
	req := Request{RunID: "r-20261202-7f3a9c", Title: "Gatehouse: apply prod-network (+3 ~1 -2)", Description: "Plan: +3 ~1 -2\nRun: https://gatehouse.example/runs/r-20261202-7f3a9c"}

	tk, err := j.Open(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if tk != (Ticket{ID: "CHG-42", Ref: "CHG-42", Link: srv.URL + "/browse/CHG-42"}) {
		t.Errorf("ticket %+v", tk)
	}
	fields := fake.issues["CHG-42"]
	if p, _ := fields["project"].(map[string]any); p["key"] != "CHG" {
		t.Errorf("project %v", fields["project"])
	}
	if it, _ := fields["issuetype"].(map[string]any); it["name"] != "Change" {
		t.Errorf("issuetype %v", fields["issuetype"])
	}
	if l, _ := fields["labels"].([]any); len(l) != 1 || l[0] != "gatehouse-r-20261202-7f3a9c" {
		t.Errorf("labels %v", fields["labels"])
	}
	if fields["summary"] != req.Title || fields["description"] != req.Description {
		t.Errorf("summary %v description %v", fields["summary"], fields["description"])
	}

	// A retry finds the issue by its label and creates none.
	fake.calls = nil
	if again, err := j.Open(ctx, req); err != nil || again != tk {
		t.Errorf("second open: %+v %v", again, err)
	}
	if len(fake.calls) != 1 || fake.calls[0] != "GET /rest/api/2/search" {
		t.Errorf("second open called %v", fake.calls)
	}

	st, err := j.Read(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	// The latest status change is Priya's, although a summary edit came
	// later and the histories are not in time order.
	wantAt := time.Date(2026, 12, 2, 14, 4, 5, 98e6, time.UTC)
	if st.Verdict != VerdictApproved || st.State != "Approved" || st.Actor != "Priya Raman" || !st.DecidedAt.Equal(wantAt) {
		t.Errorf("read %+v, want approved by Priya Raman at %v", st, wantAt)
	}

	if err := j.Cancel(ctx, tk, "Gatehouse ended the run: it was superseded."); err != nil {
		t.Fatal(err)
	}
	if len(fake.comments) != 1 || fake.comments[0] != "Gatehouse ended the run: it was superseded." || len(fake.moves) != 1 || fake.moves[0] != "31" {
		t.Errorf("cancel: comments %q transitions %q", fake.comments, fake.moves)
	}

	// A failed comment still lets the transition run, and is the error.
	fake.failOn = "/rest/api/2/issue/CHG-42/comment"
	err = j.Cancel(ctx, tk, "again")
	if err == nil || Permanent(err) || len(fake.moves) != 2 {
		t.Errorf("cancel with a failing comment: %v, transitions %q", err, fake.moves)
	}
}

func TestJiraBasicAuthAndNoTransition(t *testing.T) {
	fake := &fakeJira{t: t, issues: map[string]map[string]any{}, auth: func(r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		return ok && u == "gatehouse@acme.example" && p == "api-token"
	}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	j := &Jira{BaseURL: srv.URL + "/", Auth: Auth{Username: "gatehouse@acme.example", Password: "api-token", Token: "ignored"},
		Project: "CHG", IssueType: "Change", Client: srv.Client()}
	tk, err := j.Open(context.Background(), Request{RunID: "r-2", Title: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Cancel(context.Background(), tk, "why"); err != nil {
		t.Fatal(err)
	}
	if len(fake.moves) != 0 || len(fake.comments) != 1 {
		t.Errorf("without a cancel transition: comments %q transitions %q", fake.comments, fake.moves)
	}
}

func TestJiraMap(t *testing.T) {
	j := Jira{Approved: []string{"Approved", "Ready to deploy"}, Rejected: []string{"Declined"}}
	for status, want := range map[string]Verdict{
		"Approved": VerdictApproved, "approved": VerdictApproved, " READY TO DEPLOY ": VerdictApproved,
		"Declined": VerdictRejected, "declined": VerdictRejected,
		"Waiting for approval": VerdictNone, "": VerdictNone, "Done": VerdictNone,
	} {
		if got := j.Map(status); got != want {
			t.Errorf("Map(%q) = %q, want %q", status, got, want)
		}
	}
	if JiraLabel("r-1") != "gatehouse-r-1" {
		t.Errorf("JiraLabel(r-1) = %q", JiraLabel("r-1"))
	}
}

func TestJQLString(t *testing.T) {
	if got := jqlString(`gatehouse-a"b\c`); got != `"gatehouse-a\"b\\c"` {
		t.Errorf("jqlString = %s", got)
	}
}

func TestParseJiraIssueUpdated(t *testing.T) {
	body, err := os.ReadFile("testdata/jira-issue-updated.json")
	if err != nil {
		t.Fatal(err)
	}
	cb, err := ParseJira(body)
	if err != nil {
		t.Fatal(err)
	}
	want := JiraCallback{
		Event: "jira:issue_updated", IssueKey: "CHG-42", Labels: []string{"gatehouse-r-20261202-7f3a9c", "terraform"},
		StatusChange: true, From: "Waiting for approval", To: "Approved", Actor: "Priya Raman",
		Timestamp: time.UnixMilli(1764684245123).UTC(),
	}
	if cb.Event != want.Event || cb.IssueKey != want.IssueKey || len(cb.Labels) != 2 || cb.Labels[0] != want.Labels[0] ||
		cb.StatusChange != want.StatusChange || cb.From != want.From || cb.To != want.To || cb.Actor != want.Actor ||
		!cb.Timestamp.Equal(want.Timestamp) {
		t.Errorf("got %+v\nwant %+v", cb, want)
	}
}

func TestParseJiraEditIsNoStatusChange(t *testing.T) {
	// A summary edit on Data Center: the user has a name and an email but
	// no display name.
	body := []byte(`{
		"timestamp": 1764684300000,
		"webhookEvent": "jira:issue_updated",
		"issue_event_type_name": "issue_updated",
		"user": {"self": "https://jira.acme.example/rest/api/2/user?username=jdoe", "name": "jdoe", "key": "JIRAUSER10100", "emailAddress": "jdoe@acme.example", "active": true},
		"issue": {"id": "10042", "self": "https://jira.acme.example/rest/api/2/issue/10042", "key": "CHG-42",
			"fields": {"labels": ["gatehouse-r-1"], "status": {"name": "Waiting for approval", "id": "10002"}, "summary": "New title"}},
		"changelog": {"id": "10220", "items": [{"field": "summary", "fieldtype": "jira", "fieldId": "summary", "from": null, "fromString": "Old title", "to": null, "toString": "New title"}]}
	}`)
	cb, err := ParseJira(body)
	if err != nil {
		t.Fatal(err)
	}
	if cb.StatusChange || cb.To != "" || cb.Actor != "jdoe@acme.example" || cb.IssueKey != "CHG-42" {
		t.Errorf("summary edit: %+v", cb)
	}
}

func TestParseJiraFallsBackToTheIssueStatus(t *testing.T) {
	body := []byte(`{"webhookEvent":"jira:issue_updated","user":{"accountId":"5b10ac8d82e05b22cc7d4ef5"},
		"issue":{"key":"CHG-7","fields":{"status":{"name":"Declined"}}},
		"changelog":{"items":[{"field":"Status","fromString":"Waiting for approval"}]}}`)
	cb, err := ParseJira(body)
	if err != nil {
		t.Fatal(err)
	}
	if !cb.StatusChange || cb.To != "Declined" || cb.Actor != "5b10ac8d82e05b22cc7d4ef5" || !cb.Timestamp.IsZero() {
		t.Errorf("got %+v", cb)
	}
}

func TestParseJiraRefuses(t *testing.T) {
	for _, bad := range []string{`<html>`, `{"webhookEvent":"jira:issue_updated","issue":{"fields":{}}}`, `{}`} {
		if _, err := ParseJira([]byte(bad)); err == nil {
			t.Errorf("ParseJira(%s): no error", bad)
		}
	}
}

func TestJiraCloudSearchJQL(t *testing.T) {
	fake := &fakeJira{t: t, cloud: true, issues: map[string]map[string]any{},
		auth: func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer t" }}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	j := &Jira{BaseURL: srv.URL, Auth: Auth{Token: "t"}, Project: "CHG", IssueType: "Change", Client: srv.Client()}
	req := Request{RunID: "r-3", Title: "t"}
	if _, err := j.Open(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	fake.calls = nil
	if tk, err := j.Open(context.Background(), req); err != nil || tk.ID != "CHG-42" {
		t.Fatalf("second open: %+v %v", tk, err)
	}
	if len(fake.calls) != 2 || fake.calls[1] != "GET /rest/api/2/search/jql" {
		t.Errorf("second open called %v, want /search then /search/jql", fake.calls)
	}
}
