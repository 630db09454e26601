package itsm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeServiceNow is a Table API for change_request that checks what it is
// sent: auth, headers, the query parameters Gatehouse depends on, and the
// fields of the record it creates.
type fakeServiceNow struct {
	t       *testing.T
	mu      sync.Mutex
	records map[string]map[string]string // by sys_id
	posts   int
	patches []map[string]string
}

func (f *fakeServiceNow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := f.t
	f.mu.Lock()
	defer f.mu.Unlock()
	if u, p, ok := r.BasicAuth(); !ok || u != "gatehouse.int" || p != "s3cret" {
		t.Errorf("%s %s: basic auth %q %q %v", r.Method, r.URL.Path, u, p, ok)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Header.Get("Accept") != "application/json" || r.Header.Get("User-Agent") != "gatehouse/1" {
		t.Errorf("%s %s: Accept %q User-Agent %q", r.Method, r.URL.Path, r.Header.Get("Accept"), r.Header.Get("User-Agent"))
	}
	if (r.Method == http.MethodPost || r.Method == http.MethodPatch) && r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("%s: Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	q := r.URL.Query()
	const table = "/api/now/table/change_request"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == table:
		if q.Get("sysparm_fields") != "sys_id,number" || q.Get("sysparm_limit") != "1" {
			t.Errorf("search: query %v", q)
		}
		run, ok := strings.CutPrefix(q.Get("sysparm_query"), "correlation_id=")
		if !ok {
			t.Errorf("search: sysparm_query %q", q.Get("sysparm_query"))
		}
		result := []map[string]string{}
		for id, rec := range f.records {
			if rec["correlation_id"] == run {
				result = append(result, map[string]string{"sys_id": id, "number": rec["number"]})
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"result": result})
	case r.Method == http.MethodPost && r.URL.Path == table:
		f.posts++
		var body map[string]string
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("create: body: %v", err)
		}
		id := fmt.Sprintf("9d385017c611228701d22104cc95c37%d", f.posts)
		rec := map[string]string{
			"sys_id": id, "number": fmt.Sprintf("CHG003000%d", f.posts), "approval": "not requested", "state": "-5",
			"sys_updated_by": "gatehouse.int", "sys_updated_on": "2026-12-02 13:41:17", "comments": "",
		}
		for k, v := range body {
			rec[k] = v
		}
		f.records[id] = rec
		writeJSON(w, http.StatusCreated, map[string]any{"result": rec})
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, table+"/"):
		if q.Get("sysparm_display_value") != "false" || q.Get("sysparm_fields") != "sys_id,number,approval,state,sys_updated_by,sys_updated_on,comments" {
			t.Errorf("read: query %v", q)
		}
		rec, ok := f.records[strings.TrimPrefix(r.URL.Path, table+"/")]
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"message": "No Record found", "detail": "Record doesn't exist or ACL restricts the record retrieval"}, "status": "failure"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"result": rec})
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, table+"/"):
		var body map[string]string
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("cancel: body: %v", err)
		}
		f.patches = append(f.patches, body)
		rec := f.records[strings.TrimPrefix(r.URL.Path, table+"/")]
		for k, v := range body {
			rec[k] = v
		}
		writeJSON(w, http.StatusOK, map[string]any{"result": rec})
	default:
		t.Errorf("unexpected %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusBadRequest)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func TestServiceNowOpenReadCancel(t *testing.T) {
	fake := &fakeServiceNow{t: t, records: map[string]map[string]string{}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	sn := &ServiceNow{
		BaseURL: srv.URL + "/", Auth: Auth{Username: "gatehouse.int", Password: "s3cret"}, Client: srv.Client(),
		Fields: map[string]string{
			"assignment_group": "Network CAB", "category": "Terraform",
			// The fixed keys win over configured ones.
			"correlation_id": "someone-else", "correlation_display": "Other", "short_description": "x", "description": "y",
		},
	}
	ctx := context.Background()
	req := Request{RunID: "r-20261202-7f3a9c", Workspace: "prod-network", Title: "Gatehouse: apply prod-network (+3 ~1 -2)",
		Description: "Plan: +3 ~1 -2\nDeadline: Wed 2 Dec 2026 18:00 UTC", RunURL: "https://gatehouse.example/runs/r-20261202-7f3a9c"}

	tk, err := sn.Open(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if fake.posts != 1 {
		t.Fatalf("posts %d, want 1", fake.posts)
	}
	rec := fake.records[tk.ID]
	want := map[string]string{
		"correlation_id": req.RunID, "correlation_display": "Gatehouse", "short_description": req.Title,
		"description": req.Description, "assignment_group": "Network CAB", "category": "Terraform",
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("created %s = %q, want %q", k, rec[k], v)
		}
	}
	if tk.Ref != "CHG0030001" || tk.TokenSHA256 != "" {
		t.Errorf("ticket %+v", tk)
	}
	if wantLink := srv.URL + "/nav_to.do?uri=change_request.do%3Fsys_id%3D" + tk.ID; tk.Link != wantLink {
		t.Errorf("link %q, want %q", tk.Link, wantLink)
	}

	// A retry of the same run finds the change request and creates none.
	again, err := sn.Open(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if again != tk || fake.posts != 1 {
		t.Errorf("second open: %+v (posts %d), want %+v without a post", again, fake.posts, tk)
	}

	st, err := sn.Read(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	if st.Verdict != VerdictNone || st.State != "approval=not requested state=-5" || !st.DecidedAt.IsZero() {
		t.Errorf("new change: %+v", st)
	}

	fake.mu.Lock()
	rec["approval"], rec["state"], rec["sys_updated_by"], rec["sys_updated_on"], rec["comments"] =
		"approved", "-2", "abel.tuter", "2026-12-02 14:05:09", "2026-12-02 14:05:09 - Abel Tuter (Comments)\nOK for tonight's window\n\n"
	fake.mu.Unlock()
	st, err = sn.Read(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	wantAt := time.Date(2026, 12, 2, 14, 5, 9, 0, time.UTC)
	if st.Verdict != VerdictApproved || st.State != "approval=approved state=-2" || st.Actor != "abel.tuter" ||
		!st.DecidedAt.Equal(wantAt) || !strings.Contains(st.Comment, "OK for tonight") {
		t.Errorf("approved change: %+v", st)
	}

	if err := sn.Cancel(ctx, tk, "Gatehouse ended the run: the deadline passed."); err != nil {
		t.Fatal(err)
	}
	if len(fake.patches) != 1 || len(fake.patches[0]) != 2 || fake.patches[0]["state"] != "4" ||
		fake.patches[0]["work_notes"] != "Gatehouse ended the run: the deadline passed." {
		t.Errorf("cancel sent %v", fake.patches)
	}

	if _, err := sn.Read(ctx, Ticket{ID: "0000"}); !Permanent(err) {
		t.Errorf("read of a missing record: %v, want a permanent error", err)
	}
}

func TestServiceNowRefusesWhatItCannotSearch(t *testing.T) {
	sn := &ServiceNow{BaseURL: "http://127.0.0.1:1"}
	for _, id := range []string{"", "r-1^ORcorrelation_id=r-2"} {
		if _, err := sn.Open(context.Background(), Request{RunID: id}); !Permanent(err) {
			t.Errorf("open %q: %v, want a permanent error", id, err)
		}
	}
	if err := sn.Cancel(context.Background(), Ticket{}, "why"); !Permanent(err) {
		t.Errorf("cancel without sys_id: %v", err)
	}
}

func TestMapServiceNow(t *testing.T) {
	for _, c := range []struct {
		approval, state string
		want            Verdict
	}{
		{"approved", "-2", VerdictApproved},
		{"Approved", "-4", VerdictApproved},
		{"rejected", "-4", VerdictRejected},
		{"rejected", "4", VerdictRejected},
		{"requested", "-4", VerdictNone},
		{"not requested", "-5", VerdictNone},
		{"requested", "4", VerdictCancelled},
		{"not yet requested", "Canceled", VerdictCancelled},
		{"", "cancelled", VerdictCancelled},
		{"", "3", VerdictNone},
		{"", "", VerdictNone},
	} {
		if got := MapServiceNow(c.approval, c.state); got != c.want {
			t.Errorf("MapServiceNow(%q, %q) = %q, want %q", c.approval, c.state, got, c.want)
		}
	}
}

func TestParseServiceNow(t *testing.T) {
	// What the business rule in the README posts on update of a change
	// request Gatehouse opened.
	body := []byte(`{
		"sys_id": "9d385017c611228701d22104cc95c371",
		"number": "CHG0030001",
		"correlation_id": "r-20261202-7f3a9c",
		"approval": "rejected",
		"state": "-4",
		"sys_updated_by": "beth.anglin",
		"comments": "Not during the freeze."
	}`)
	cb, st, err := ParseServiceNow(body)
	if err != nil {
		t.Fatal(err)
	}
	if cb.SysID != "9d385017c611228701d22104cc95c371" || cb.Number != "CHG0030001" || cb.CorrelationID != "r-20261202-7f3a9c" {
		t.Errorf("callback %+v", cb)
	}
	if st.Verdict != VerdictRejected || st.State != "approval=rejected state=-4" || st.Actor != "beth.anglin" || st.Comment != "Not during the freeze." {
		t.Errorf("state %+v", st)
	}
	for _, bad := range []string{`not json`, `{"number":"CHG1","correlation_id":"r-1"}`, `{"sys_id":"abc","approval":"approved"}`, `[]`} {
		if _, _, err := ParseServiceNow([]byte(bad)); err == nil {
			t.Errorf("ParseServiceNow(%s): no error", bad)
		}
	}
}
