package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/starter"
)

// Client is a small client of the REST API, for the gatehouse CLI.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:8080
	Token   string
	HTTP    *http.Client
}

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// CreateRun submits a plan (the bytes of `terraform show -json`) to workspace.
func (c *Client) CreateRun(ctx context.Context, workspace string, plan []byte, message, idempotencyKey string) (RunView, error) {
	return c.Submit(ctx, workspace, Submission{Plan: plan, Message: message, IdempotencyKey: idempotencyKey})
}

// Submission is what `gatehouse start` sends. Every field is optional: a
// terraform workspace plans itself when no plan is given.
type Submission struct {
	Plan       []byte // `terraform show -json` output
	Cost       []byte // `infracost breakdown --format json` output
	PlanFile   []byte // the binary plan of `plan -out`, sent base64
	Message    string
	OnBehalfOf string
	Ref        string // git ref a terraform workspace plans from
	// IdempotencyKey makes a retried submission return the same run.
	IdempotencyKey string
}

// Submit starts a run on workspace.
func (c *Client) Submit(ctx context.Context, workspace string, sub Submission) (RunView, error) {
	body, err := sub.body()
	if err != nil {
		return RunView{}, err
	}
	var run RunView
	err = c.do(ctx, http.MethodPost, wsPath(workspace)+"/runs", body, sub.IdempotencyKey, &run)
	return run, err
}

// body encodes the request. The plan and cost documents are embedded byte
// for byte (json.Marshal would compact them): their hashes must be the
// hashes of the files the user has, surrounding whitespace aside. Fields
// not given are left out, so a gateway that does not know them (ref,
// plan_file) is not sent them.
func (sub Submission) body() ([]byte, error) {
	var fields [][]byte
	add := func(name string, value []byte) {
		fields = append(fields, slices.Concat([]byte(`"`+name+`": `), value))
	}
	for _, doc := range []struct {
		name string
		data []byte
		hint string
	}{
		{"plan", sub.Plan, "pass the output of `terraform show -json <planfile>`"},
		{"cost", sub.Cost, "pass the output of `infracost breakdown --format json`"},
	} {
		if doc.data == nil {
			continue
		}
		raw := bytes.TrimSpace(doc.data)
		if !json.Valid(raw) {
			return nil, fmt.Errorf("%s file is not JSON: %s", doc.name, doc.hint)
		}
		add(doc.name, raw)
	}
	var planFile string
	if sub.PlanFile != nil {
		planFile = base64.StdEncoding.EncodeToString(sub.PlanFile)
	}
	for _, f := range []struct{ name, value string }{
		{"message", sub.Message}, {"on_behalf_of", sub.OnBehalfOf}, {"ref", sub.Ref}, {"plan_file", planFile},
	} {
		if f.value == "" && f.name != "message" {
			continue
		}
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", f.name, err)
		}
		add(f.name, v)
	}
	return slices.Concat([]byte("{"), bytes.Join(fields, []byte(", ")), []byte("}")), nil
}

// GetRun reads a run.
func (c *Client) GetRun(ctx context.Context, workspace, id string) (RunView, error) {
	var run RunView
	err := c.do(ctx, http.MethodGet, runPathOf(workspace, id), nil, "", &run)
	return run, err
}

// ListRuns lists a workspace's runs, newest first; status "" for all.
func (c *Client) ListRuns(ctx context.Context, workspace string, status approval.Status) ([]starter.RunSummary, error) {
	path := wsPath(workspace) + "/runs"
	if status != "" {
		path += "?status=" + url.QueryEscape(string(status))
	}
	var out struct {
		Runs []starter.RunSummary `json:"runs"`
	}
	err := c.do(ctx, http.MethodGet, path, nil, "", &out)
	return out.Runs, err
}

// Decision is the body of a decision: the text field its kind takes
// (comment, or message for cancel) and, for approve and cancel, the
// reasons it is for (none: all the caller may decide).
type Decision struct {
	Comment   string   `json:"comment,omitempty"`
	Message   string   `json:"message,omitempty"`
	ReasonIDs []string `json:"reason_ids,omitempty"`
}

// decisionPaths are the endpoints of the decisions the CLI sends.
var decisionPaths = map[approval.DecisionKind]string{
	approval.DecisionApprove: "approve",
	approval.DecisionReject:  "reject",
	approval.DecisionCancel:  "cancel",
}

// Decide sends a decision on a run and returns the run after it.
func (c *Client) Decide(ctx context.Context, workspace, id string, kind approval.DecisionKind, d Decision, idempotencyKey string) (RunView, error) {
	action, ok := decisionPaths[kind]
	if !ok {
		return RunView{}, fmt.Errorf("decision %q: not sent by this client", kind)
	}
	body, err := json.Marshal(d)
	if err != nil {
		return RunView{}, fmt.Errorf("encode decision: %w", err)
	}
	var run RunView
	err = c.do(ctx, http.MethodPost, runPathOf(workspace, id)+"/"+action, body, idempotencyKey, &run)
	return run, err
}

// Logs returns the apply's output.
func (c *Client) Logs(ctx context.Context, workspace, id string) ([]byte, error) {
	return c.send(ctx, http.MethodGet, runPathOf(workspace, id)+"/logs", nil, "")
}

// Approval returns the signed approval of an approved run, byte for byte
// as issued: re-encoding it would break its signature.
func (c *Client) Approval(ctx context.Context, workspace, id string) ([]byte, error) {
	return c.send(ctx, http.MethodGet, runPathOf(workspace, id)+"/approval", nil, "")
}

// ApprovalKey returns the public half of the gateway's approval key.
func (c *Client) ApprovalKey(ctx context.Context) (ApprovalKeyInfo, error) {
	var info ApprovalKeyInfo
	err := c.do(ctx, http.MethodGet, "/api/v1/approval-key", nil, "", &info)
	return info, err
}

// Done reports whether the run can change no more (approval.Run.Done, on
// the view).
func (v RunView) Done() bool {
	r := approval.Run{Status: v.Status, Mode: v.Mode}
	return r.Done()
}

func wsPath(workspace string) string { return "/api/v1/workspaces/" + url.PathEscape(workspace) }

func runPathOf(workspace, id string) string { return wsPath(workspace) + "/runs/" + url.PathEscape(id) }

// RunURL is the API address of a run.
func (c *Client) RunURL(run RunView) string {
	return strings.TrimRight(c.BaseURL, "/") + runPathOf(run.Workspace, run.ID)
}

// do sends a request and decodes its JSON answer into out.
func (c *Client) do(ctx context.Context, method, path string, body []byte, idempotencyKey string, out any) error {
	data, err := c.send(ctx, method, path, body, idempotencyKey)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response of %s %s: %w", method, path, err)
	}
	return nil
}

// send sends a request and returns its answer's body; an error answer is
// an *APIError.
func (c *Client) send(ctx context.Context, method, path string, body []byte, idempotencyKey string) ([]byte, error) {
	resp, err := c.open(ctx, method, path, body, idempotencyKey)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	return data, nil
}

// open sends a request and returns the successful response, whose body the
// caller reads and closes; an error answer is an *APIError.
func (c *Client) open(ctx context.Context, method, path string, body []byte, idempotencyKey string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(data))
	}
	return nil, &APIError{Status: resp.StatusCode, Message: e.Error}
}

// ExportAudit streams the audit trail's events that match the filters
// (GET /api/v1/audit/export: workspace, run, actor, action, since, until
// and format csv or jsonl) to w.
func (c *Client) ExportAudit(ctx context.Context, filters url.Values, w io.Writer) error {
	resp, err := c.open(ctx, http.MethodGet, "/api/v1/audit/export?"+filters.Encode(), nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	return nil
}
