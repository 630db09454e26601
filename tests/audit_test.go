package tests

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

// auditPage is the audit API's answer.
type auditPage struct {
	Events     []approval.AuditEvent `json:"events"`
	NextCursor string                `json:"next_cursor"`
}

// trail reads the audit trail of the run as token's user until it has
// want's last action, and returns its actions oldest first.
func (s *stack) trail(run gateway.RunView, token string, last approval.AuditAction) []approval.AuditEvent {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var page auditPage
		s.call("GET", "/api/v1/audit?limit=1000&run="+url.QueryEscape(run.ID), token, nil).decode(s.t, &page)
		events := slices.Clone(page.Events)
		slices.Reverse(events)
		if len(events) > 0 && events[len(events)-1].Action == last {
			return events
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("trail of %s: %v; want it to end with %s", run.ID, actionsOf(events), last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func actionsOf(events []approval.AuditEvent) []approval.AuditAction {
	var out []approval.AuditAction
	for _, e := range events {
		out = append(out, e.Action)
	}
	return out
}

func TestAuditTrailRecordsWhoApprovedWhat(t *testing.T) {
	auditScenario(t, newStack(t, stackOptions{}))
}

// TestAuditTrailOnPostgres is the same story with the production database.
func TestAuditTrailOnPostgres(t *testing.T) {
	auditScenario(t, newStack(t, stackOptions{postgres: true}))
}

func auditScenario(t *testing.T, s *stack) {
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(run, "approve", "t-bob", map[string]string{"comment": "checked the NAT swap"}, http.StatusOK)
	s.decide(run, "approve", "t-carol", nil, http.StatusOK)
	s.waitFor(run, approval.StatusApplied)
	rejected := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(rejected, "reject", "t-carol", map[string]string{"comment": "not during the freeze"}, http.StatusOK)

	events := s.trail(run, "t-victor", approval.AuditApplied)
	want := []approval.AuditAction{approval.AuditRequested, approval.AuditReasonOpened, approval.AuditApproved,
		approval.AuditApproved, approval.AuditApplyStarted, approval.AuditApplied}
	if got := actionsOf(events); !slices.Equal(got, want) {
		t.Fatalf("trail %v; want %v", got, want)
	}
	var status approval.Status
	for _, e := range events {
		if e.RunID != run.ID || e.Workspace != "prod-network" || e.Environment != "production" || e.Plan.SHA256 != run.Plan.SHA256 ||
			e.Plan.Destroys != 2 || e.ConfigVersion != run.ConfigVersion || e.WorkflowVersion != "lean-4" || e.ID == "" {
			t.Errorf("event %s lacks the run's context: %+v", e.Action, e)
		}
		if e.Action != approval.AuditReasonOpened && e.StatusBefore != status {
			t.Errorf("%s: status before %q; the trail had %q", e.Action, e.StatusBefore, status)
		}
		status = e.StatusAfter
	}
	requested, bob, carol := events[0], events[2], events[3]
	if requested.Actor.ID != "alice" || requested.Actor.Email != "alice@example.com" || requested.Actor.Channel != approval.ChannelAPI {
		t.Errorf("requested by %+v; want alice through the API", requested.Actor)
	}
	if bob.Actor.ID != "bob" || bob.Comment != "checked the NAT swap" || bob.ResponseSeconds <= 0 || len(bob.ReasonIDs) != 1 ||
		bob.StatusAfter != approval.StatusPendingApproval {
		t.Errorf("bob's approval %+v", bob)
	}
	if carol.Actor.ID != "carol" || carol.StatusAfter != approval.StatusApproved {
		t.Errorf("carol's approval %+v", carol)
	}
	if last := events[len(events)-1]; last.Actor.ID != approval.SystemActor || last.Actor.Channel != approval.ChannelSystem || last.StatusAfter != approval.StatusApplied {
		t.Errorf("applied %+v; want the system's, to applied", last)
	}
	s.trail(rejected, "t-victor", approval.AuditRejected)

	// Filters.
	var page auditPage
	s.call("GET", "/api/v1/audit?actor=carol&action=rejected", "t-victor", nil).decode(t, &page)
	if len(page.Events) != 1 || page.Events[0].RunID != rejected.ID || page.Events[0].Comment != "not during the freeze" {
		t.Errorf("carol's rejections: %+v", page.Events)
	}
	since := events[2].At.Format(time.RFC3339Nano)
	until := events[4].At.Format(time.RFC3339Nano)
	s.call("GET", "/api/v1/audit?run="+run.ID+"&since="+url.QueryEscape(since)+"&until="+url.QueryEscape(until), "t-victor", nil).decode(t, &page)
	for _, e := range page.Events {
		if e.At.Before(events[2].At) || !e.At.Before(events[4].At) {
			t.Errorf("event at %s outside [%s, %s)", e.At, since, until)
		}
	}
	if len(page.Events) < 2 {
		t.Errorf("%d events between the approvals and the apply; want both approvals", len(page.Events))
	}

	// Pages: newest first, every event once.
	var all []approval.AuditEvent
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("the pages never end")
		}
		path := "/api/v1/audit?workspace=prod-network&limit=3"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		var p auditPage
		s.call("GET", path, "t-victor", nil).decode(t, &p)
		if len(p.Events) > 3 {
			t.Fatalf("a page of %d events; limit 3", len(p.Events))
		}
		all = append(all, p.Events...)
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	var whole auditPage
	s.call("GET", "/api/v1/audit?workspace=prod-network", "t-victor", nil).decode(t, &whole)
	if len(all) != len(whole.Events) || len(all) < len(events)+3 {
		t.Fatalf("paged %d events, unpaged %d; want the same, at least %d", len(all), len(whole.Events), len(events)+3)
	}
	for i := range all {
		if all[i].ID != whole.Events[i].ID {
			t.Fatalf("page order differs at %d: %s vs %s", i, all[i].ID, whole.Events[i].ID)
		}
		if i > 0 && all[i].At.After(all[i-1].At) {
			t.Errorf("event %d is newer than the one before it", i)
		}
	}

	// Only what the caller may read: dave reads neither workspace's trail.
	s.call("GET", "/api/v1/audit", "t-dave", nil).decode(t, &page)
	for _, e := range page.Events {
		if e.Workspace == "prod-network" {
			t.Fatalf("dave sees prod-network's trail: %+v", e)
		}
	}
	if r := s.call("GET", "/api/v1/audit?workspace=prod-network", "t-dave", nil); r.status != http.StatusForbidden {
		t.Errorf("dave asking for prod-network's trail: %d; want 403", r.status)
	}
	if r := s.call("GET", "/api/v1/audit", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("no token: %d; want 401", r.status)
	}

	// Bad input: a 400 naming the parameter, nothing else.
	for query, field := range map[string]string{
		"limit=0": "limit", "limit=1001": "limit", "limit=ten": "limit", "since=yesterday": "since",
		"until=2026-13-01T00:00:00Z": "until", "action=approve": "action", "cursor=not-a-cursor": "cursor",
		"colour=blue": "colour", "workspace=nope": "",
		"since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z": "since",
	} {
		r := s.call("GET", "/api/v1/audit?"+query, "t-victor", nil)
		want := http.StatusBadRequest
		if field == "" {
			want = http.StatusNotFound
		}
		if r.status != want || !strings.HasPrefix(r.errorMessage(t), field) {
			t.Errorf("%s: %d %s; want %d naming %q", query, r.status, r.body, want, field)
		}
	}

	// Exports: the same events, as CSV and as JSON Lines.
	csvResp := s.call("GET", "/api/v1/audit/export?format=csv&workspace=prod-network", "t-victor", nil)
	rows, err := csv.NewReader(strings.NewReader(string(csvResp.body))).ReadAll()
	if err != nil || csvResp.status != http.StatusOK {
		t.Fatalf("csv export: %d %v", csvResp.status, err)
	}
	if len(rows) != len(whole.Events)+1 || rows[0][0] != "id" || rows[1][0] != whole.Events[0].ID {
		t.Errorf("csv export: %d rows (header %v); want a header and %d events, newest first", len(rows), rows[0], len(whole.Events))
	}
	jsonl := s.call("GET", "/api/v1/audit/export?format=jsonl&workspace=prod-network", "t-victor", nil)
	var lines []approval.AuditEvent
	sc := bufio.NewScanner(strings.NewReader(string(jsonl.body)))
	for sc.Scan() {
		var e approval.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("jsonl line %q: %v", sc.Text(), err)
		}
		lines = append(lines, e)
	}
	if len(lines) != len(whole.Events) || lines[0].ID != whole.Events[0].ID {
		t.Errorf("jsonl export: %d events; want %d", len(lines), len(whole.Events))
	}
	for query, field := range map[string]string{"format=xml": "format", "format=csv&limit=5": "limit", "format=csv&since=x": "since"} {
		if r := s.call("GET", "/api/v1/audit/export?"+query, "t-victor", nil); r.status != http.StatusBadRequest || !strings.Contains(r.errorMessage(t), field) {
			t.Errorf("export %s: %d %s; want 400 naming %s", query, r.status, r.body, field)
		}
	}

	// The run list from the trail pages past what visibility holds.
	var listed []string
	cursor = ""
	for {
		var p struct {
			Runs []struct {
				ID     string          `json:"id"`
				Status approval.Status `json:"status"`
			} `json:"runs"`
			NextCursor string `json:"next_cursor"`
		}
		path := "/api/v1/workspaces/prod-network/runs?source=audit&limit=1"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		s.call("GET", path, "t-victor", nil).decode(t, &p)
		for _, r := range p.Runs {
			listed = append(listed, r.ID+":"+string(r.Status))
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if want := []string{rejected.ID + ":rejected", run.ID + ":applied"}; !slices.Equal(listed, want) {
		t.Errorf("runs from the trail %v; want %v", listed, want)
	}
	if r := s.call("GET", "/api/v1/workspaces/prod-network/runs?source=elsewhere", "t-victor", nil); r.status != http.StatusBadRequest {
		t.Errorf("source=elsewhere: %d; want 400", r.status)
	}
}

// TestAuditTrailRecordsTerminations: a run terminated in Temporal cannot say
// so itself; the gateway records it the first time it reads the run.
func TestAuditTrailRecordsTerminations(t *testing.T) {
	s := newStack(t, stackOptions{})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.trail(run, "t-victor", approval.AuditReasonOpened)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.client.TerminateWorkflow(ctx, run.ID, "", "stuck worker, terminated by the on-call"); err != nil {
		t.Fatal(err)
	}
	s.waitFor(run, approval.StatusTerminated)
	s.get(run) // a second read records nothing more
	events := s.trail(run, "t-victor", approval.AuditTerminated)
	last := events[len(events)-1]
	if last.Comment != "stuck worker, terminated by the on-call" || last.StatusAfter != approval.StatusTerminated {
		t.Errorf("termination %+v", last)
	}
	n := 0
	for _, e := range events {
		if e.Action == approval.AuditTerminated {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d terminations recorded; want one", n)
	}
}

// TestAuditExportCommand: gatehouse audit export writes the trail over the
// API, with --since as a duration.
func TestAuditExportCommand(t *testing.T) {
	s := newCLIStack(t)
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(run, "reject", "t-carol", map[string]string{"comment": "no"}, http.StatusOK)
	s.trail(run, "t-victor", approval.AuditRejected)
	res := s.gatehouse("t-victor", "audit", "export", "--since", "1h", "--format", "csv", "-w", "prod-network")
	res.must(t, 0, "audit export")
	rows, err := csv.NewReader(strings.NewReader(res.stdout)).ReadAll()
	if err != nil || len(rows) < 4 || rows[1][6] != "rejected" || rows[1][9] != run.ID {
		t.Fatalf("export: %v rows %q", err, res.stdout)
	}
	res = s.gatehouse("t-victor", "audit", "export", "--since", "2026-12-01T00:00:00Z", "--until", "1h", "--format", "jsonl", "--action", "rejected")
	res.must(t, 0, "audit export --until 1h")
	if strings.TrimSpace(res.stdout) != "" {
		t.Errorf("events older than an hour: %q; want none", res.stdout)
	}
	if res := s.gatehouse("t-victor", "audit", "export", "--since", "last week"); res.code == 0 || !strings.Contains(res.stderr, "--since") {
		t.Errorf("--since 'last week': exit %d %q; want a usage error", res.code, res.stderr)
	}
	if res := s.gatehouse("t-victor", "audit", "export", "--since", "1h", "--action", "approve"); res.code == 0 || !strings.Contains(res.stderr, "action") {
		t.Errorf("--action approve: exit %d %q; want the API's refusal", res.code, res.stderr)
	}
}
