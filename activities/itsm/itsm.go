// Package itsm holds small net/http clients for the systems a workspace can
// hand its approvals to (ServiceNow's Table API, Jira's REST API v2, a
// generic signed webhook), and the parsers and verifiers of what they send
// back. No Go client for ServiceNow or Jira is a dependency worth having for
// the handful of calls Gatehouse makes; these are written against the
// documented endpoints and tested against servers that check every request.
package itsm

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// Verdict is what an external system decided: the domain's own type, so
// what a client reads needs no translation before it reaches a run.
type Verdict = approval.Verdict

// The verdicts. VerdictNone is most of what a system reports: the ticket
// still waits, or someone edited it without deciding.
const (
	VerdictNone      = approval.VerdictNone
	VerdictApproved  = approval.VerdictApproved
	VerdictRejected  = approval.VerdictRejected
	VerdictCancelled = approval.VerdictCancelled
)

// Request is the change Gatehouse asks the system to approve.
type Request struct {
	RunID     string
	Workspace string
	// Title is one line, e.g. "Gatehouse: apply prod-network (+3 ~1 -2)".
	Title string
	// Description is plain text, multi-line: what approvers read in the
	// ticket (plan summary, cost, policies, deadline, link).
	Description string
	RunURL      string
	// CallbackURL (webhook only) is the base the per-run token is
	// appended to, so the receiver can answer without a shared secret.
	CallbackURL string
	Deadline    time.Time
}

// Ticket is the ticket that stands for a run's approval.
type Ticket struct {
	// ID is the system's own id: the ServiceNow sys_id, the Jira issue
	// key, the webhook request id. It is what Read and Cancel address.
	ID string
	// Ref is what people call it: the ServiceNow number (CHG0030001), the
	// Jira key, the webhook receiver's id.
	Ref string
	// Link is the URL a person opens ("" when the system gave none).
	Link string
	// TokenSHA256 (webhook only) is the hex SHA-256 of the per-run
	// callback token. Only the digest is returned, so the token that
	// decides the run never reaches Temporal's history or the database.
	TokenSHA256 string
}

// State is a ticket as the system reports it now (reconciliation), or as a
// callback said.
type State struct {
	Verdict Verdict
	// State is the system's own words (ServiceNow "approval=requested
	// state=-4", a Jira status name), kept for the run's record because
	// the verdict alone hides what a person saw.
	State string
	// Actor is who decided or last updated the ticket, if the system says.
	Actor   string
	Comment string
	// DecidedAt is zero when the system does not say.
	DecidedAt time.Time
}

// Provider is one external approval system.
type Provider interface {
	// Open creates the ticket for the run. Temporal retries activities,
	// so Open first looks for a ticket an earlier attempt created for the
	// same run and creates one only if there is none.
	Open(ctx context.Context, req Request) (Ticket, error)
	// Read reads the ticket now, for reconciliation when a callback was
	// lost.
	Read(ctx context.Context, t Ticket) (State, error)
	// Cancel withdraws the ticket because Gatehouse ended the run; why is
	// a sentence for the people watching it. Callers treat it as best
	// effort.
	Cancel(ctx context.Context, t Ticket, why string) error
}

// ErrNoReconciliation is Read's answer when the system has nothing to read
// (a generic webhook): the run can only be decided by its callback.
var ErrNoReconciliation = errors.New("this provider has no ticket to read: only its callback decides")

// ErrInvalid wraps a request Gatehouse cannot send as given (no run id, a
// malformed URL, a run id the system's query language cannot carry).
// Permanent reports it, since no retry changes it.
var ErrInvalid = errors.New("invalid request")

// Auth is how a client authenticates: Basic when Username is set (a
// ServiceNow integration user, Jira Cloud email + API token), else Bearer
// with Token (an OAuth token, a Jira Data Center personal access token).
type Auth struct {
	Username, Password, Token string
}

func (a Auth) apply(r *http.Request) {
	switch {
	case a.Username != "":
		r.SetBasicAuth(a.Username, a.Password)
	case a.Token != "":
		r.Header.Set("Authorization", "Bearer "+a.Token)
	}
}

// StatusError is an answer outside 2xx. Body is the start (at most 512
// bytes) of what the system said, which usually explains the refusal.
type StatusError struct {
	Op   string
	Code int
	Body string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("%s: HTTP %d", e.Op, e.Code)
	}
	return fmt.Sprintf("%s: HTTP %d: %s", e.Op, e.Code, e.Body)
}

// Permanent reports whether retrying cannot change err, so the caller
// should stop: a 4xx answer other than 408 (timeout) and 429 (rate limit),
// or ErrInvalid. Transport errors, 408, 429 and 5xx may pass.
func Permanent(err error) bool {
	if errors.Is(err, ErrInvalid) {
		return true
	}
	var se *StatusError
	return errors.As(err, &se) && se.Code >= 400 && se.Code < 500 &&
		se.Code != http.StatusRequestTimeout && se.Code != http.StatusTooManyRequests
}

// maxResponse bounds what is read of an answer: a ticket is small, and a
// misbehaving or hostile endpoint must not make the worker buffer without
// limit.
const maxResponse = 1 << 20

// maxErrorBody bounds the part of a refusal kept in a StatusError, which
// ends up in Temporal's history and in logs.
const maxErrorBody = 512

// userAgent names Gatehouse to the systems' administrators.
const userAgent = "gatehouse/1"

// do sends one JSON request and decodes a 2xx answer into out (nil: skip).
func do(ctx context.Context, hc *http.Client, op, method, url string, auth Auth, body, out any) error {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return fmt.Errorf("%s: encode the request: %w", op, err)
		}
	}
	req, err := newRequest(ctx, op, method, url, data)
	if err != nil {
		return err
	}
	auth.apply(req)
	return send(hc, op, req, out)
}

// newRequest builds a request with the headers every call carries. A
// request that cannot be built (a malformed base URL) is ErrInvalid: no
// retry would build it.
func newRequest(ctx context.Context, op, method, url string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", op, ErrInvalid, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// send sends req and, on 2xx, decodes the answer into out (nil or an empty
// answer: skip).
func send(hc *http.Client, op string, req *http.Request, out any) error {
	data, err := sendRaw(hc, op, req)
	if err != nil || out == nil || len(bytes.TrimSpace(data)) == 0 {
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: answer is not the JSON expected: %w", op, err)
	}
	return nil
}

// sendRaw sends req and returns a 2xx answer's body. Any other status is a
// *StatusError carrying the start of what the system said, since that is
// usually the only explanation an operator gets.
func sendRaw(hc *http.Client, op string, req *http.Request) ([]byte, error) {
	if hc == nil {
		hc = &http.Client{Timeout: 20 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("%s: read answer: %w", op, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &StatusError{Op: op, Code: resp.StatusCode, Body: trim(string(data), maxErrorBody)}
	}
	return data, nil
}

func trim(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) <= n {
		return s
	}
	for i := n; i > 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return s[:n]
}

// VerifyHexHMAC reports whether header is "sha256=<hex>" of the HMAC-SHA256
// of the raw body keyed with secret: how a ServiceNow business rule
// (X-Gatehouse-Signature) and a Jira webhook with a secret (X-Hub-Signature)
// sign what they send. The digests are compared in constant time, so a
// forger learns nothing from timing; a missing or malformed header, or an
// empty secret, never verifies.
func VerifyHexHMAC(secret string, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok || secret == "" {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(got, mac.Sum(nil))
}

// TokenSHA256 is the hex SHA-256 of a callback token: what a run keeps in
// place of the token, and what the gateway looks the run up by.
func TokenSHA256(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// TokenMatches reports, in constant time, whether token's digest is
// wantHex (as TokenSHA256 writes it).
func TokenMatches(token, wantHex string) bool {
	return subtle.ConstantTimeCompare([]byte(TokenSHA256(token)), []byte(wantHex)) == 1
}
