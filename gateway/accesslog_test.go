package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
)

// TestAccessLogRecordsTheStatusSent: a request refused with a domain error
// (here a message over the limit, refused before Temporal is asked) is
// logged with the status the client got. Before, the access log rendered
// the error itself and wrote 500 for every non-Echo error.
func TestAccessLogRecordsTheStatusSent(t *testing.T) {
	cfg, err := config.Parse([]byte(`
users:
  - {id: alice, email: alice@example.com, roles: [approver], groups: [platform], token: t-alice}
  - {id: bob, email: bob@example.com, roles: [approver], groups: [platform], token: t-bob}
workspaces:
  - name: ws
    rules: [{name: r, approvers: {groups: [platform]}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	h := New(Options{Config: cfg, Logger: zap.New(core)})
	for _, tc := range []struct {
		name, path, body string
		want             int
	}{
		{"domain 400", "/api/v1/workspaces/ws/runs", `{"plan": {}, "message": "` + strings.Repeat("m", approval.MaxMessageBytes+1) + `"}`, 400},
		{"domain 404", "/api/v1/workspaces/nope/runs", `{}`, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body))
			req.Header.Set("Authorization", "Bearer t-alice")
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want || !strings.Contains(rec.Body.String(), `"error"`) {
				t.Fatalf("got %d %s; want %d with an error body", rec.Code, rec.Body, tc.want)
			}
			var entries []observer.LoggedEntry
			for _, e := range logs.TakeAll() {
				if e.Message == "http request" {
					entries = append(entries, e)
				}
			}
			if len(entries) != 1 {
				t.Fatalf("got %d access log lines (%v); want 1", len(entries), entries)
			}
			if got := entries[0].ContextMap()["status"]; got != int64(tc.want) {
				t.Errorf("access log status %v; want %d", got, tc.want)
			}
		})
	}
}
