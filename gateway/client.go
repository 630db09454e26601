package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
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
	if !json.Valid(plan) {
		return RunView{}, fmt.Errorf("plan file is not JSON: pass the output of `terraform show -json <planfile>`")
	}
	// The plan is embedded byte for byte (json.Marshal would compact it):
	// its hash must be the hash of the file the user has.
	msg, err := json.Marshal(message)
	if err != nil {
		return RunView{}, fmt.Errorf("encode request: %w", err)
	}
	body := slices.Concat([]byte(`{"plan": `), bytes.TrimSpace(plan), []byte(`, "message": `), msg, []byte("}"))
	var run RunView
	err = c.do(ctx, http.MethodPost, "/api/v1/workspaces/"+url.PathEscape(workspace)+"/runs", body, idempotencyKey, &run)
	return run, err
}

// RunURL is the API address of a run.
func (c *Client) RunURL(run RunView) string {
	return strings.TrimRight(c.BaseURL, "/") + "/api/v1/workspaces/" + url.PathEscape(run.Workspace) + "/runs/" + url.PathEscape(run.ID)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, idempotencyKey string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}
