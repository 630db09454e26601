package itsm

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiver is a webhook receiver that verifies each delivery the way a
// receiver would, written here independently of the client's signing.
type receiver struct {
	t      *testing.T
	secret string
	answer string
	mu     sync.Mutex
	got    []map[string]string
	events []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := rc.t
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		t.Error(err)
	}
	ts := r.Header.Get("X-Gatehouse-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > time.Minute {
		t.Errorf("timestamp %q", ts)
	}
	mac := hmac.New(sha256.New, []byte(rc.secret))
	mac.Write([]byte(ts + "." + string(raw)))
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); r.Header.Get("X-Gatehouse-Signature") != want {
		t.Errorf("signature %q, want %q", r.Header.Get("X-Gatehouse-Signature"), want)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("User-Agent") != "gatehouse/1" {
		t.Errorf("%s Content-Type %q User-Agent %q", r.Method, r.Header.Get("Content-Type"), r.Header.Get("User-Agent"))
	}
	var body map[string]string
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Errorf("body %s: %v", raw, err)
	}
	if r.Header.Get("X-Gatehouse-Event") != body["event"] {
		t.Errorf("event header %q, body event %q", r.Header.Get("X-Gatehouse-Event"), body["event"])
	}
	rc.mu.Lock()
	rc.got = append(rc.got, body)
	rc.events = append(rc.events, r.Header.Get("X-Gatehouse-Event-Id"))
	rc.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, rc.answer)
}

func TestWebhookOpenCancel(t *testing.T) {
	rc := &receiver{t: t, secret: "whsec-1", answer: `{"id":"APR-7","url":"https://approvals.acme.example/APR-7","status":"pending"}`}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	wh := &Webhook{URL: srv.URL + "/hooks/gatehouse", Secret: "whsec-1", Client: srv.Client()}
	deadline := time.Date(2026, 12, 2, 18, 0, 0, 0, time.FixedZone("CET", 3600))
	req := Request{RunID: "r-1", Workspace: "prod-network", Title: "Gatehouse: apply prod-network", Description: "line 1\nline 2",
		RunURL: "https://gatehouse.example/runs/r-1", CallbackURL: "https://gatehouse.example/api/v1/external/webhook/callback/", Deadline: deadline}

	tk, err := wh.Open(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.got) != 1 {
		t.Fatalf("deliveries %d", len(rc.got))
	}
	b := rc.got[0]
	for k, v := range map[string]string{
		"event": "approval_requested", "run_id": "r-1", "workspace": "prod-network", "title": req.Title,
		"description": req.Description, "run_url": req.RunURL, "deadline": "2026-12-02T17:00:00Z", "request_id": tk.ID,
	} {
		if b[k] != v {
			t.Errorf("body %s = %q, want %q", k, b[k], v)
		}
	}
	if rc.events[0] != tk.ID || !strings.HasPrefix(tk.ID, "req-") || len(tk.ID) != len("req-")+16 {
		t.Errorf("event id %q, request id %q", rc.events[0], tk.ID)
	}
	token, ok := strings.CutPrefix(b["callback_url"], "https://gatehouse.example/api/v1/external/webhook/callback/")
	if !ok || len(token) != 43 || strings.Contains(token, "/") {
		t.Fatalf("callback_url %q", b["callback_url"])
	}
	sum := sha256.Sum256([]byte(token))
	if tk.TokenSHA256 != hex.EncodeToString(sum[:]) || !TokenMatches(token, tk.TokenSHA256) || TokenMatches(token+"x", tk.TokenSHA256) {
		t.Errorf("token digest %q does not match the callback's token", tk.TokenSHA256)
	}
	if tk.Ref != "APR-7" || tk.Link != "https://approvals.acme.example/APR-7" {
		t.Errorf("ticket %+v, want the receiver's id and url", tk)
	}

	// Each attempt has its own token.
	tk2, err := wh.Open(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if tk2.TokenSHA256 == tk.TokenSHA256 || tk2.ID == tk.ID {
		t.Errorf("a second open reused the token or request id")
	}

	if err := wh.Cancel(context.Background(), tk, "Gatehouse ended the run: the deadline passed."); err != nil {
		t.Fatal(err)
	}
	c := rc.got[len(rc.got)-1]
	if len(c) != 3 || c["event"] != "approval_cancelled" || c["request_id"] != tk.ID || c["reason"] != "Gatehouse ended the run: the deadline passed." {
		t.Errorf("cancel body %v", c)
	}
	if id := rc.events[len(rc.events)-1]; id == tk.ID || !strings.HasPrefix(id, tk.ID) {
		t.Errorf("cancel event id %q", id)
	}

	if _, err := wh.Read(context.Background(), tk); !errors.Is(err, ErrNoReconciliation) {
		t.Errorf("read: %v", err)
	}
}

func TestWebhookAnswerWithoutReference(t *testing.T) {
	for _, answer := range []string{``, `ok`, `{"id":42,"url":"javascript:alert(1)"}`, `{"url":"/relative"}`} {
		rc := &receiver{t: t, secret: "s", answer: answer}
		srv := httptest.NewServer(rc)
		wh := &Webhook{URL: srv.URL, Secret: "s", Client: srv.Client()}
		tk, err := wh.Open(context.Background(), Request{RunID: "r-1", CallbackURL: "https://gh.example/cb"})
		srv.Close()
		if err != nil {
			t.Errorf("answer %q: %v", answer, err)
			continue
		}
		if tk.Ref != tk.ID || tk.Link != "" {
			t.Errorf("answer %q: ticket %+v, want the request id and no link", answer, tk)
		}
	}
}

func TestWebhookNeedsACallbackURL(t *testing.T) {
	wh := &Webhook{URL: "http://127.0.0.1:1", Secret: "s"}
	if _, err := wh.Open(context.Background(), Request{RunID: "r-1"}); !Permanent(err) {
		t.Errorf("open without a callback URL: %v, want a permanent error", err)
	}
}

func TestParseWebhookCallback(t *testing.T) {
	cb, st, err := ParseWebhookCallback([]byte(`{"decision":"approved","actor":"cab@acme.example","comment":"Window 22:00","decided_at":"2026-12-02T15:04:05+01:00"}`))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 2, 14, 4, 5, 0, time.UTC)
	if cb.Decision != "approved" || !cb.DecidedAt.Equal(at) ||
		st != (State{Verdict: VerdictApproved, State: "approved", Actor: "cab@acme.example", Comment: "Window 22:00", DecidedAt: cb.DecidedAt}) {
		t.Errorf("callback %+v state %+v", cb, st)
	}
	_, st, err = ParseWebhookCallback([]byte(`{"decision":"rejected"}`))
	if err != nil || st.Verdict != VerdictRejected || !st.DecidedAt.IsZero() {
		t.Errorf("rejected without a time: %+v %v", st, err)
	}
	for body, field := range map[string]string{
		`{"decision":"maybe"}`:                           "decision",
		`{"actor":"x"}`:                                  "decision",
		`{"decision":"Approved"}`:                        "decision",
		`{"decision":"cancelled"}`:                       "decision",
		`{"decision":"approved","decided_at":"today"}`:   "decided_at",
		`{"decision":"approved","decided_at":"1733150"}`: "decided_at",
		`not json`: "decision",
	} {
		if _, _, err := ParseWebhookCallback([]byte(body)); err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("ParseWebhookCallback(%s): %v, want an error naming %s", body, err, field)
		}
	}
}
