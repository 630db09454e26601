package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/google/go-cmp/cmp"
)

// hostile has what an export must carry through: formulas, separators,
// quotes, new lines and text beyond ASCII.
func hostile() approval.AuditEvent {
	e := event("e-1", "ws", "run-1", time.Date(2026, 5, 2, 3, 4, 5, 600700800, time.FixedZone("x", -5*3600)))
	e.Comment = "=HYPERLINK(\"http://evil\",\"click\")"
	e.Actor.Email = "+1@example.com"
	e.Detail = "-2+3, \"quoted\"\nsecond line; ünïcode"
	e.WorkflowVersion = "@SUM(A1)"
	e.ConfigVersion = "\tcmd"
	e.ReasonIDs = []string{"a", "b,c"}
	e.ResponseSeconds = 0.25
	return e
}

func TestCSV(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		s := newStore(t, b)
		older := event("e-0", "ws", "run-1", base)
		older.ReasonIDs, older.ResponseSeconds = nil, 0
		write(t, s, hostile(), older)
		var buf bytes.Buffer
		enc := NewCSVEncoder(&buf)
		if err := s.Export(context.Background(), Filter{Workspaces: []string{"ws"}}, enc.Encode); err != nil {
			t.Fatal(err)
		}
		if err := enc.Flush(); err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(&buf).ReadAll()
		if err != nil {
			t.Fatalf("the export is not CSV: %v", err)
		}
		want := [][]string{
			{"id", "at", "actor_id", "actor_email", "actor_source", "channel", "action", "workspace", "environment",
				"run_id", "reason_ids", "plan_sha256", "adds", "changes", "destroys", "replaces", "comment",
				"response_seconds", "config_version", "workflow_version", "status_before", "status_after", "detail"},
			{"e-1", "2026-05-02T08:04:05.6007008Z", "alice", "'+1@example.com", "sso", "ui", "approved", "ws", "prod",
				"run-1", "a;b,c", "ab12", "1", "2", "3", "4", "'=HYPERLINK(\"http://evil\",\"click\")",
				"0.25", "'\tcmd", "'@SUM(A1)", "pending_approval", "approved", "'-2+3, \"quoted\"\nsecond line; ünïcode"},
			{"e-0", "2026-03-14T15:09:26.535897932Z", "alice", "alice@example.com", "sso", "ui", "approved", "ws", "prod",
				"run-1", "", "ab12", "1", "2", "3", "4", "looks good",
				"0", "cfg-7", "wf-3", "pending_approval", "approved", "two of two"},
		}
		if diff := cmp.Diff(want, rows); diff != "" {
			t.Fatalf("CSV (-want +got):\n%s", diff)
		}
	})
}

func TestCSVEmpty(t *testing.T) {
	var buf bytes.Buffer
	enc := NewCSVEncoder(&buf)
	if err := enc.Flush(); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 1 || len(rows[0]) != len(csvHeader) {
		t.Fatalf("an empty export is %q, %v; want the header alone", rows, err)
	}
}

func TestJSONL(t *testing.T) {
	eachDB(t, func(t *testing.T, b backend) {
		s := newStore(t, b)
		want := []approval.AuditEvent{hostile(), event("e-0", "ws", "run-1", base)}
		write(t, s, want...)
		var buf bytes.Buffer
		enc := NewJSONLEncoder(&buf)
		if err := s.Export(context.Background(), Filter{Workspaces: []string{"ws"}}, enc.Encode); err != nil {
			t.Fatal(err)
		}
		if err := enc.Flush(); err != nil {
			t.Fatal(err)
		}
		var got []approval.AuditEvent
		lines := bufio.NewScanner(&buf)
		for lines.Scan() {
			var e approval.AuditEvent
			if err := json.Unmarshal(lines.Bytes(), &e); err != nil {
				t.Fatalf("line %q: %v", lines.Text(), err)
			}
			got = append(got, e)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("JSON Lines (-want +got):\n%s", diff)
		}
	})
}
