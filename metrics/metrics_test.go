package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
)

type fixedCounts map[approval.Status]int

func (f fixedCounts) CountRuns(context.Context) (map[approval.Status]int, error) { return f, nil }

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

func TestMetricsRecordWhatTheyAreTold(t *testing.T) {
	m, err := New(zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.CountRuns(fixedCounts{approval.StatusApplied: 3, approval.StatusPendingApproval: 1}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	m.HTTP("/api/v1/workspaces/:ws/runs", "POST", 201, 40*time.Millisecond)
	m.Decision(approval.DecisionApprove, approval.ChannelSlack, "accepted")
	m.Decision(approval.DecisionApprove, approval.ChannelSlack, "forbidden")
	m.Audited([]approval.AuditEvent{{Action: approval.AuditApproved, ResponseSeconds: 120}, {Action: approval.AuditReasonOpened}})
	m.NotifyFailure("webhook")
	m.Apply(approval.ApplyResult{Executed: true, StartedAt: t0, FinishedAt: t0.Add(90 * time.Second)})
	m.Apply(approval.ApplyResult{Executed: true, ExitCode: 2, StartedAt: t0, FinishedAt: t0.Add(time.Second)})
	m.Apply(approval.ApplyResult{Executed: true, OutcomeUnknown: true, Error: "worker lost"})
	m.Apply(approval.ApplyResult{}) // nothing ran: not an apply
	body := scrape(t, m)
	for _, want := range []string{
		`gatehouse_runs{status="applied"} 3`,
		`gatehouse_runs{status="pending_approval"} 1`,
		`gatehouse_http_request_duration_seconds_count{code="201",method="POST",route="/api/v1/workspaces/:ws/runs"} 1`,
		`gatehouse_decisions_total{channel="slack",kind="approve",outcome="accepted"} 1`,
		`gatehouse_decisions_total{channel="slack",kind="approve",outcome="forbidden"} 1`,
		`gatehouse_approval_wait_seconds_count{action="approved"} 1`,
		`gatehouse_approval_wait_seconds_sum{action="approved"} 120`,
		`gatehouse_notify_failures_total{channel="webhook"} 1`,
		`gatehouse_apply_duration_seconds_sum{result="applied"} 90`,
		`gatehouse_apply_duration_seconds_count{result="failed"} 1`,
		`gatehouse_apply_duration_seconds_count{result="outcome_unknown"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, `action="reason_opened"`) {
		t.Error("a reason opening counted as an approval wait")
	}
	if m.SDKHandler() == nil {
		t.Error("no SDK handler")
	}
}

// A nil *Metrics is what a process without --metrics-addr has: every call
// is a no-op.
func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	m.HTTP("/", "GET", 200, time.Second)
	m.Decision(approval.DecisionReject, "api", "accepted")
	m.Audited([]approval.AuditEvent{{Action: approval.AuditApproved, ResponseSeconds: 1}})
	m.NotifyFailure("slack")
	m.Apply(approval.ApplyResult{Executed: true})
	if err := m.CountRuns(fixedCounts{}); err != nil || m.SDKHandler() != nil || m.Close(context.Background()) != nil {
		t.Error("a nil Metrics did something")
	}
}
