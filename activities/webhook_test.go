package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/approval"
)

// receiver is a webhook endpoint that verifies every delivery the way a real
// receiver should, and records what it accepted.
type receiver struct {
	mu       sync.Mutex
	secret   string
	status   int
	accepted []activities.Event
	rejected []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := activities.VerifyWebhook(rc.secret, r.Header, body, 5*time.Minute, time.Now()); err != nil {
		rc.rejected = append(rc.rejected, err.Error())
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var e activities.Event
	if err := json.Unmarshal(body, &e); err != nil || r.Header.Get(activities.HeaderEventID) != e.ID || r.Header.Get(activities.HeaderEvent) != string(e.Kind) {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	rc.accepted = append(rc.accepted, e)
	if rc.status != 0 {
		w.WriteHeader(rc.status)
	}
}

func TestWebhookSignsWhatTheReceiverVerifies(t *testing.T) {
	rc := &receiver{secret: "s3cret"}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	e := activities.Event{ID: "run-1/3", Kind: activities.EventReminder, RunID: "run-1", Workspace: "ws",
		Status: approval.StatusPendingApproval, Recipients: []approval.UserID{"bob"}}
	if err := (activities.Webhook{URL: srv.URL, Secret: "s3cret"}).Notify(context.Background(), e); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	if len(rc.accepted) != 1 || rc.accepted[0].ID != "run-1/3" || rc.accepted[0].Recipients[0] != "bob" {
		t.Errorf("receiver accepted %+v; want the reminder for bob", rc.accepted)
	}
	// A sender with the wrong secret is turned away, and the refusal is final.
	err := (activities.Webhook{URL: srv.URL, Secret: "wrong"}).Notify(context.Background(), e)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || !appErr.NonRetryable() || len(rc.rejected) != 1 || !strings.Contains(rc.rejected[0], "signature") {
		t.Errorf("wrong secret: %v (receiver said %v); want a non-retryable refusal over the signature", err, rc.rejected)
	}
}

func TestWebhookServerErrorsAreRetried(t *testing.T) {
	rc := &receiver{secret: "k", status: http.StatusServiceUnavailable}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	err := (activities.Webhook{URL: srv.URL, Secret: "k"}).Notify(context.Background(), activities.Event{ID: "x", Kind: activities.EventFinished})
	var appErr *temporal.ApplicationError
	if err == nil || (errors.As(err, &appErr) && appErr.NonRetryable()) {
		t.Errorf("503: %v; want a retryable error", err)
	}
}

func TestVerifyWebhookRejectsStaleAndTampered(t *testing.T) {
	var got http.Header
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, body = r.Header.Clone(), mustRead(r)
	}))
	defer srv.Close()
	if err := (activities.Webhook{URL: srv.URL, Secret: "k"}).Notify(context.Background(), activities.Event{ID: "x", Kind: activities.EventFinished}); err != nil {
		t.Fatal(err)
	}
	if err := activities.VerifyWebhook("k", got, body, time.Minute, time.Now()); err != nil {
		t.Fatalf("fresh delivery: %v", err)
	}
	if err := activities.VerifyWebhook("k", got, body, time.Minute, time.Now().Add(10*time.Minute)); err == nil {
		t.Error("a delivery replayed 10 minutes later was accepted")
	}
	if err := activities.VerifyWebhook("k", got, append(body, ' '), time.Minute, time.Now()); err == nil {
		t.Error("a tampered body was accepted")
	}
}

func mustRead(r *http.Request) []byte {
	b, _ := io.ReadAll(r.Body)
	return b
}
