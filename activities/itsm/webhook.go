package itsm

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The headers of a signed delivery: the same as every Gatehouse webhook, so
// a receiver verifies ticket requests with the code it already has.
const (
	headerEvent     = "X-Gatehouse-Event"
	headerEventID   = "X-Gatehouse-Event-Id"
	headerTimestamp = "X-Gatehouse-Timestamp"
	headerSignature = "X-Gatehouse-Signature"
)

// The events a webhook receiver is sent.
const (
	eventRequested = "approval_requested"
	eventCancelled = "approval_cancelled"
)

// Webhook hands the approval to any system that takes a signed JSON POST
// and answers on a callback URL. Secret signs what Gatehouse sends; the
// answer is authenticated by the per-run token in the callback URL
// instead, so the receiver needs no secret of its own to call back.
type Webhook struct {
	URL, Secret string
	Client      *http.Client
}

// Open posts the approval request with a callback URL holding a fresh
// random token. A webhook cannot be searched, so unlike the other
// providers Open is not idempotent by itself: each attempt has a new
// request id and token, the run keeps the digest of the one whose post
// succeeded, and the body carries run_id so a receiver can fold repeats.
func (w *Webhook) Open(ctx context.Context, req Request) (Ticket, error) {
	if req.CallbackURL == "" {
		return Ticket{}, fmt.Errorf("webhook: open: %w: no callback URL to give the receiver", ErrInvalid)
	}
	token, err := randomToken()
	if err != nil {
		return Ticket{}, fmt.Errorf("webhook: open: %w", err)
	}
	id, err := randomRequestID()
	if err != nil {
		return Ticket{}, fmt.Errorf("webhook: open: %w", err)
	}
	body := map[string]string{
		"event": eventRequested, "request_id": id, "run_id": req.RunID, "workspace": req.Workspace,
		"title": req.Title, "description": req.Description, "run_url": req.RunURL,
		"callback_url": strings.TrimRight(req.CallbackURL, "/") + "/" + token,
	}
	if !req.Deadline.IsZero() {
		body["deadline"] = req.Deadline.UTC().Format(time.RFC3339)
	}
	answer, err := w.post(ctx, eventRequested, id, body)
	if err != nil {
		return Ticket{}, err
	}
	t := Ticket{ID: id, Ref: id, TokenSHA256: TokenSHA256(token)}
	// A receiver may answer with its own id and link, or with anything
	// else: a 2xx accepts the request either way.
	var ref struct {
		ID  any `json:"id"`
		URL any `json:"url"`
	}
	if json.Unmarshal(answer, &ref) == nil {
		if s, ok := ref.ID.(string); ok && strings.TrimSpace(s) != "" {
			t.Ref = strings.TrimSpace(s)
		}
		if s, ok := ref.URL.(string); ok && webLink(s) {
			t.Link = s
		}
	}
	return t, nil
}

// webLink reports whether s is an absolute http(s) URL. The link is shown
// to people as something to click, so whatever else a receiver answers (a
// javascript: URL, a relative path) is dropped.
func webLink(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// Read has nothing to read: a generic receiver only calls back.
func (w *Webhook) Read(context.Context, Ticket) (State, error) {
	return State{}, ErrNoReconciliation
}

// Cancel tells the receiver the request is withdrawn. Its event id differs
// from the request's, so a receiver that drops repeated event ids does not
// drop the withdrawal, and stays the same across retries, so it can drop
// repeats of it.
func (w *Webhook) Cancel(ctx context.Context, t Ticket, why string) error {
	if t.ID == "" {
		return fmt.Errorf("webhook: cancel: %w: no request id", ErrInvalid)
	}
	_, err := w.post(ctx, eventCancelled, t.ID+"-cancelled",
		map[string]string{"event": eventCancelled, "request_id": t.ID, "reason": why})
	return err
}

// post sends one signed delivery and returns the 2xx answer's body. The
// signature is HMAC-SHA256 keyed with the secret over "<timestamp>.<body>",
// so a receiver can refuse both forged and replayed deliveries.
func (w *Webhook) post(ctx context.Context, event, eventID string, body any) ([]byte, error) {
	op := "webhook: " + event
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%s: encode the request: %w", op, err)
	}
	req, err := newRequest(ctx, op, http.MethodPost, w.URL, data)
	if err != nil {
		return nil, err
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set(headerEvent, event)
	req.Header.Set(headerEventID, eventID)
	req.Header.Set(headerTimestamp, ts)
	req.Header.Set(headerSignature, "sha256="+SignTimestamped(w.Secret, ts, data))
	return sendRaw(w.Client, op, req)
}

// SignTimestamped is the hex HMAC-SHA256, keyed with secret, of
// "<ts>.<body>": how every Gatehouse webhook is signed.
func SignTimestamped(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// randomToken is a callback token: 32 random bytes, URL-safe, so it can sit
// in a path as it is.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("callback token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// randomRequestID names one approval request to the receiver.
func randomRequestID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("request id: %w", err)
	}
	return "req-" + hex.EncodeToString(b), nil
}

// WebhookCallback is what a receiver posts to its callback URL.
type WebhookCallback struct {
	Decision  string    `json:"decision"`
	Actor     string    `json:"actor"`
	Comment   string    `json:"comment"`
	DecidedAt time.Time `json:"decided_at"`
}

// ParseWebhookCallback parses what a receiver posted to its callback URL
// (the caller has matched the URL's token). Only "approved" and "rejected"
// decide, and nothing else is accepted: a receiver that means something
// else should not post. decided_at is optional, RFC 3339 when present.
func ParseWebhookCallback(body []byte) (WebhookCallback, State, error) {
	var raw struct {
		Decision  string `json:"decision"`
		Actor     string `json:"actor"`
		Comment   string `json:"comment"`
		DecidedAt string `json:"decided_at"`
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return WebhookCallback{}, State{}, fmt.Errorf(`want {"decision": "approved" or "rejected", "actor", "comment", "decided_at"}: %w`, err)
	}
	cb := WebhookCallback{Decision: raw.Decision, Actor: raw.Actor, Comment: raw.Comment}
	var v Verdict
	switch raw.Decision {
	case "approved":
		v = VerdictApproved
	case "rejected":
		v = VerdictRejected
	default:
		return cb, State{}, fmt.Errorf(`decision: want "approved" or "rejected", got %q`, raw.Decision)
	}
	if raw.DecidedAt != "" {
		at, err := time.Parse(time.RFC3339, raw.DecidedAt)
		if err != nil {
			return cb, State{}, fmt.Errorf("decided_at: want RFC 3339, e.g. 2006-01-02T15:04:05Z: %w", err)
		}
		cb.DecidedAt = at.UTC()
	}
	return cb, State{Verdict: v, State: cb.Decision, Actor: cb.Actor, Comment: cb.Comment, DecidedAt: cb.DecidedAt}, nil
}
