package itsm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ServiceNow stands for a run's approval with a change request, through
// the Table API (/api/now/table/change_request). The change's own approval
// workflow decides; Gatehouse only opens, reads and cancels the record.
type ServiceNow struct {
	BaseURL string
	Auth    Auth
	// Fields are copied into every change request (assignment group,
	// category, type...). The fields Gatehouse sets itself win, so no
	// config can break the correlation Open searches by.
	Fields map[string]string
	Client *http.Client
}

// changeTable is the Table API path of change requests.
const changeTable = "/api/now/table/change_request"

// snRecord is a change request as the Table API returns it (string values,
// sysparm_display_value=false).
type snRecord struct {
	SysID        string `json:"sys_id"`
	Number       string `json:"number"`
	Approval     string `json:"approval"`
	State        string `json:"state"`
	SysUpdatedBy string `json:"sys_updated_by"`
	SysUpdatedOn string `json:"sys_updated_on"`
	Comments     string `json:"comments"`
}

// Open finds the run's change request by its correlation_id (the run id)
// or creates it. The correlation fields are ServiceNow's place for an
// external system's key, so they make the search exact and let a business
// rule tell Gatehouse's changes from others.
func (s *ServiceNow) Open(ctx context.Context, req Request) (Ticket, error) {
	if req.RunID == "" {
		return Ticket{}, fmt.Errorf("servicenow: open: %w: no run id", ErrInvalid)
	}
	if strings.Contains(req.RunID, "^") {
		// ^ separates the conditions of an encoded query: the search
		// would match other records, and Open would not be idempotent.
		return Ticket{}, fmt.Errorf("servicenow: open: %w: run id %q has a ^, which an encoded query cannot carry", ErrInvalid, req.RunID)
	}
	base := strings.TrimRight(s.BaseURL, "/")
	q := url.Values{
		"sysparm_query":  {"correlation_id=" + req.RunID},
		"sysparm_fields": {"sys_id,number"},
		"sysparm_limit":  {"1"},
	}
	var found struct {
		Result []snRecord `json:"result"`
	}
	if err := do(ctx, s.Client, "servicenow: look for the run's change request", http.MethodGet, base+changeTable+"?"+q.Encode(), s.Auth, nil, &found); err != nil {
		return Ticket{}, err
	}
	if len(found.Result) > 0 && found.Result[0].SysID != "" {
		return s.ticket(found.Result[0]), nil
	}
	body := map[string]string{}
	for k, v := range s.Fields {
		body[k] = v
	}
	body["short_description"] = req.Title
	body["description"] = req.Description
	body["correlation_id"] = req.RunID
	body["correlation_display"] = "Gatehouse"
	var created struct {
		Result snRecord `json:"result"`
	}
	if err := do(ctx, s.Client, "servicenow: create change request", http.MethodPost, base+changeTable, s.Auth, body, &created); err != nil {
		return Ticket{}, err
	}
	if created.Result.SysID == "" {
		return Ticket{}, fmt.Errorf("servicenow: create change request: the answer has no sys_id")
	}
	return s.ticket(created.Result), nil
}

// ticket names a record. The link goes through nav_to.do so it opens in
// the instance's frame; its uri parameter is itself a query, escaped.
func (s *ServiceNow) ticket(r snRecord) Ticket {
	base := strings.TrimRight(s.BaseURL, "/")
	link := base + "/nav_to.do?uri=" + url.QueryEscape("change_request.do?sys_id="+r.SysID)
	ref := r.Number
	if ref == "" {
		ref = r.SysID
	}
	return Ticket{ID: r.SysID, Ref: ref, Link: link}
}

// Read reads the change request's approval and state. Raw values
// (sysparm_display_value=false) are asked for, because display values are
// translated and customised per instance and the mapping needs the codes.
func (s *ServiceNow) Read(ctx context.Context, t Ticket) (State, error) {
	if t.ID == "" {
		return State{}, fmt.Errorf("servicenow: read change request: %w: no sys_id", ErrInvalid)
	}
	q := url.Values{
		"sysparm_fields":        {"sys_id,number,approval,state,sys_updated_by,sys_updated_on,comments"},
		"sysparm_display_value": {"false"},
	}
	var got struct {
		Result snRecord `json:"result"`
	}
	u := strings.TrimRight(s.BaseURL, "/") + changeTable + "/" + url.PathEscape(t.ID) + "?" + q.Encode()
	if err := do(ctx, s.Client, "servicenow: read change request", http.MethodGet, u, s.Auth, nil, &got); err != nil {
		return State{}, err
	}
	r := got.Result
	st := State{Verdict: MapServiceNow(r.Approval, r.State), State: snState(r.Approval, r.State), Actor: r.SysUpdatedBy, Comment: r.Comments}
	if st.Verdict != VerdictNone {
		// Raw date-times are in UTC, whatever the user's time zone.
		if at, err := time.Parse("2006-01-02 15:04:05", r.SysUpdatedOn); err == nil {
			st.DecidedAt = at.UTC()
		}
	}
	return st, nil
}

// Cancel sets the change request to Canceled (state 4) with a work note
// saying why, so nobody approves a change Gatehouse will no longer apply.
func (s *ServiceNow) Cancel(ctx context.Context, t Ticket, why string) error {
	if t.ID == "" {
		// An empty id would address the whole table.
		return fmt.Errorf("servicenow: cancel change request: %w: no sys_id", ErrInvalid)
	}
	u := strings.TrimRight(s.BaseURL, "/") + changeTable + "/" + url.PathEscape(t.ID)
	return do(ctx, s.Client, "servicenow: cancel change request", http.MethodPatch, u, s.Auth, map[string]string{"state": "4", "work_notes": why}, nil)
}

// MapServiceNow reads a verdict from a change request's approval and
// state. The approval field is what approvers set, so it decides first:
// "approved" and "rejected". Otherwise a change moved to Canceled (state 4,
// or the word, as a display value would give it) is cancelled; anything
// else (requested, not yet requested, an edit) decides nothing.
func MapServiceNow(approval, state string) Verdict {
	switch strings.ToLower(strings.TrimSpace(approval)) {
	case "approved":
		return VerdictApproved
	case "rejected":
		return VerdictRejected
	}
	switch strings.ToLower(strings.TrimSpace(state)) {
	case "4", "canceled", "cancelled":
		return VerdictCancelled
	}
	return VerdictNone
}

// snState is the record's own words for the run's history.
func snState(approval, state string) string {
	return "approval=" + approval + " state=" + state
}

// ServiceNowCallback is what the business rule in Gatehouse's README posts
// when a change request Gatehouse opened is updated: the record's raw
// values.
type ServiceNowCallback struct {
	SysID         string `json:"sys_id"`
	Number        string `json:"number"`
	CorrelationID string `json:"correlation_id"`
	Approval      string `json:"approval"`
	State         string `json:"state"`
	SysUpdatedBy  string `json:"sys_updated_by"`
	Comments      string `json:"comments"`
}

// ParseServiceNow parses a business-rule callback (whose signature the
// caller has checked) into the record and the state it reports. A body
// without sys_id or correlation_id cannot be matched to a run and is an
// error.
func ParseServiceNow(body []byte) (ServiceNowCallback, State, error) {
	var cb ServiceNowCallback
	if err := json.Unmarshal(body, &cb); err != nil {
		return cb, State{}, fmt.Errorf("not the JSON a ServiceNow business rule sends: %w", err)
	}
	if cb.SysID == "" {
		return cb, State{}, fmt.Errorf("sys_id: missing")
	}
	if cb.CorrelationID == "" {
		return cb, State{}, fmt.Errorf("correlation_id: missing: the change request was not opened by Gatehouse")
	}
	return cb, State{Verdict: MapServiceNow(cb.Approval, cb.State), State: snState(cb.Approval, cb.State), Actor: cb.SysUpdatedBy, Comment: cb.Comments}, nil
}
