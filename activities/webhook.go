package activities

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/gatehouse-dev/gatehouse/activities/itsm"
)

// Webhook headers. The signature is HMAC-SHA256, keyed with the workspace's
// secret, over "<timestamp>.<body>", so a receiver can reject both forged and
// replayed deliveries.
const (
	HeaderEvent     = "X-Gatehouse-Event"
	HeaderEventID   = "X-Gatehouse-Event-Id"
	HeaderTimestamp = "X-Gatehouse-Timestamp"
	HeaderSignature = "X-Gatehouse-Signature"
)

// Webhook delivers events as signed JSON POSTs. A failed delivery is an
// error, so Temporal retries the activity; a receiver that answers 4xx
// (other than 408 and 429) refused the event, and retrying would not help.
type Webhook struct {
	URL    string
	Secret string
	Client *http.Client
}

// Notify posts the event.
func (w Webhook) Notify(ctx context.Context, e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("webhook request: %v", err), "WebhookInvalid", nil)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gatehouse-webhook/1")
	req.Header.Set(HeaderEvent, string(e.Kind))
	req.Header.Set(HeaderEventID, e.ID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, "sha256="+sign(w.Secret, ts, body))
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", w.URL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("webhook %s refused the event: %s", w.URL, resp.Status), "WebhookRefused", nil)
	default:
		return fmt.Errorf("webhook %s answered %s", w.URL, resp.Status)
	}
}

func sign(secret, ts string, body []byte) string { return itsm.SignTimestamped(secret, ts, body) }

// VerifyWebhook checks a delivery's signature and that its timestamp is within
// maxAge of now. Receivers written in Go can use it; it documents the scheme
// for everyone else.
func VerifyWebhook(secret string, header http.Header, body []byte, maxAge time.Duration, now time.Time) error {
	ts := header.Get(HeaderTimestamp)
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("webhook: missing or malformed timestamp")
	}
	if age := now.Sub(time.Unix(sec, 0)); age > maxAge || age < -maxAge {
		return fmt.Errorf("webhook: timestamp %s is outside the accepted window", ts)
	}
	want := "sha256=" + sign(secret, ts, body)
	if !hmac.Equal([]byte(header.Get(HeaderSignature)), []byte(want)) {
		return errors.New("webhook: signature mismatch")
	}
	return nil
}
