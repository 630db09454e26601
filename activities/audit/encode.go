package audit

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// csvHeader names the CSV export's columns, in order.
var csvHeader = [...]string{
	"id", "at", "actor_id", "actor_email", "actor_source", "channel", "action", "workspace", "environment",
	"run_id", "reason_ids", "plan_sha256", "adds", "changes", "destroys", "replaces", "comment",
	"response_seconds", "config_version", "workflow_version", "status_before", "status_after", "detail",
}

// CSVEncoder writes events as CSV with a header row, for auditors'
// spreadsheets. Use it as Export's fn, then Flush.
type CSVEncoder struct {
	w      *csv.Writer
	header bool
}

// NewCSVEncoder returns an encoder writing to w.
func NewCSVEncoder(w io.Writer) *CSVEncoder {
	return &CSVEncoder{w: csv.NewWriter(w)}
}

// Encode writes one event as a row, after the header if it is the first.
func (c *CSVEncoder) Encode(e approval.AuditEvent) error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	row := []string{
		e.ID, e.At.UTC().Format(time.RFC3339Nano), string(e.Actor.ID), e.Actor.Email, string(e.Actor.Source),
		e.Actor.Channel, string(e.Action), e.Workspace, e.Environment, e.RunID, strings.Join(e.ReasonIDs, ";"),
		e.Plan.SHA256, strconv.Itoa(e.Plan.Adds), strconv.Itoa(e.Plan.Changes), strconv.Itoa(e.Plan.Destroys),
		strconv.Itoa(e.Plan.Replaces), e.Comment, strconv.FormatFloat(e.ResponseSeconds, 'f', -1, 64),
		e.ConfigVersion, e.WorkflowVersion, string(e.StatusBefore), string(e.StatusAfter), e.Detail,
	}
	for i, cell := range row {
		row[i] = defuseFormula(cell)
	}
	if err := c.w.Write(row); err != nil {
		return fmt.Errorf("audit: csv: event %q: %w", e.ID, err)
	}
	return nil
}

// Flush writes what is buffered, and the header if no event was encoded, so
// an empty export is still a valid file with its columns.
func (c *CSVEncoder) Flush() error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	c.w.Flush()
	if err := c.w.Error(); err != nil {
		return fmt.Errorf("audit: csv: %w", err)
	}
	return nil
}

func (c *CSVEncoder) writeHeader() error {
	if c.header {
		return nil
	}
	c.header = true
	if err := c.w.Write(csvHeader[:]); err != nil {
		return fmt.Errorf("audit: csv: header: %w", err)
	}
	return nil
}

// defuseFormula keeps a spreadsheet from running a cell as a formula: a
// comment or a user's name is attacker-chosen text, and a cell that starts
// with = + - @ (or a tab or carriage return, which some spreadsheets skip
// before looking) gets a leading ' so it shows as text.
func defuseFormula(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return "'" + cell
	}
	return cell
}

// JSONLEncoder writes events as JSON Lines: one approval.AuditEvent in its
// JSON form per line.
type JSONLEncoder struct {
	enc *json.Encoder
}

// NewJSONLEncoder returns an encoder writing to w.
func NewJSONLEncoder(w io.Writer) *JSONLEncoder {
	enc := json.NewEncoder(w)
	// The lines are data for tools and people, never embedded in HTML.
	enc.SetEscapeHTML(false)
	return &JSONLEncoder{enc: enc}
}

// Encode writes one event as a line.
func (j *JSONLEncoder) Encode(e approval.AuditEvent) error {
	if err := j.enc.Encode(e); err != nil {
		return fmt.Errorf("audit: jsonl: event %q: %w", e.ID, err)
	}
	return nil
}

// Flush does nothing: every line is written as it is encoded. It is there
// so that both encoders are used alike.
func (j *JSONLEncoder) Flush() error { return nil }
