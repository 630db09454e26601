package itsm

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPermanent(t *testing.T) {
	for code, want := range map[int]bool{
		400: true, 401: true, 403: true, 404: true, 409: true, 422: true,
		408: false, 429: false, 500: false, 502: false, 503: false,
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, code, map[string]any{"error": map[string]string{"message": http.StatusText(code)}, "status": "failure"})
		}))
		sn := &ServiceNow{BaseURL: srv.URL, Client: srv.Client()}
		_, err := sn.Read(context.Background(), Ticket{ID: "abc"})
		srv.Close()
		var se *StatusError
		if !errors.As(err, &se) || se.Code != code || !strings.Contains(se.Body, http.StatusText(code)) {
			t.Errorf("%d: error %v", code, err)
		}
		if got := Permanent(err); got != want {
			t.Errorf("%d: Permanent = %v, want %v", code, got, want)
		}
		if got := Permanent(fmt.Errorf("wrapped: %w", err)); got != want {
			t.Errorf("%d wrapped: Permanent = %v, want %v", code, got, want)
		}
	}
	if Permanent(nil) || Permanent(errors.New("other")) {
		t.Error("Permanent of nil or a plain error")
	}
	if !Permanent(fmt.Errorf("x: %w", ErrInvalid)) {
		t.Error("ErrInvalid is not permanent")
	}
}

func TestTransportErrorIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	j := &Jira{BaseURL: url, Project: "CHG", IssueType: "Change"}
	_, err := j.Open(context.Background(), Request{RunID: "r-1"})
	if err == nil || Permanent(err) {
		t.Errorf("closed server: %v, want a retryable error", err)
	}
	if !strings.Contains(err.Error(), "jira") {
		t.Errorf("error without context: %v", err)
	}
}

func TestStatusErrorBodyIsBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(strings.Repeat("é", 5000)))
	}))
	defer srv.Close()
	err := (&ServiceNow{BaseURL: srv.URL, Client: srv.Client()}).Cancel(context.Background(), Ticket{ID: "abc"}, "why")
	var se *StatusError
	if !errors.As(err, &se) || len(se.Body) > 512 || len(se.Body) < 500 || !utf8.ValidString(se.Body) {
		t.Fatalf("error %v", err)
	}
	if !strings.Contains(se.Error(), "502") || !strings.Contains(se.Error(), "servicenow") {
		t.Errorf("Error() = %q", se.Error())
	}
}

func TestAnswerIsBounded(t *testing.T) {
	// A 2xx answer beyond 1 MiB is cut, so it is not the JSON expected
	// (and the worker did not buffer it all).
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"result":{"sys_id":"` + strings.Repeat("a", 2<<20) + `"}}`))
	}))
	defer srv.Close()
	_, err := (&ServiceNow{BaseURL: srv.URL, Client: srv.Client()}).Read(context.Background(), Ticket{ID: "abc"})
	if err == nil || !strings.Contains(err.Error(), "JSON") {
		t.Errorf("oversized answer: %v", err)
	}
}

func TestMalformedBaseURLIsPermanent(t *testing.T) {
	_, err := (&ServiceNow{BaseURL: "http://[::1"}).Open(context.Background(), Request{RunID: "r-1"})
	if !Permanent(err) {
		t.Errorf("malformed URL: %v", err)
	}
}

func TestAuth(t *testing.T) {
	for _, c := range []struct {
		auth Auth
		want string
	}{
		{Auth{Username: "u", Password: "p", Token: "t"}, "Basic dTpw"},
		{Auth{Token: "t"}, "Bearer t"},
		{Auth{}, ""},
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://x", nil)
		c.auth.apply(r)
		if got := r.Header.Get("Authorization"); got != c.want {
			t.Errorf("%+v: Authorization %q, want %q", c.auth, got, c.want)
		}
	}
}

func TestVerifyHexHMAC(t *testing.T) {
	body := []byte(`{"sys_id":"9d385017c611228701d22104cc95c371","approval":"approved"}`)
	mac := hmac.New(sha256.New, []byte("cb-secret"))
	mac.Write(body)
	sig := hex.EncodeToString(mac.Sum(nil))
	for header, want := range map[string]bool{
		"sha256=" + sig:                  true,
		"sha256=" + strings.ToUpper(sig): true,
		"sha256=" + sig[:62]:             false, // short
		"sha256=" + sig + "00":           false, // long
		"sha256=" + sig[:63] + "g":       false, // not hex
		"sha1=" + sig:                    false,
		sig:                              false, // no scheme
		"sha256=":                        false,
		"":                               false,
	} {
		if got := VerifyHexHMAC("cb-secret", body, header); got != want {
			t.Errorf("VerifyHexHMAC(%q) = %v, want %v", header, got, want)
		}
	}
	if VerifyHexHMAC("other-secret", body, "sha256="+sig) {
		t.Error("verified with the wrong secret")
	}
	if VerifyHexHMAC("cb-secret", append(body, ' '), "sha256="+sig) {
		t.Error("verified a changed body")
	}
	if VerifyHexHMAC("", body, "sha256="+hex.EncodeToString(hmac.New(sha256.New, nil).Sum(nil))) {
		t.Error("verified with an empty secret")
	}
}

func TestTokenSHA256(t *testing.T) {
	// sha256("abc"), the FIPS 180-2 example.
	if got := TokenSHA256("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("TokenSHA256(abc) = %s", got)
	}
	if !TokenMatches("abc", TokenSHA256("abc")) || TokenMatches("abd", TokenSHA256("abc")) || TokenMatches("abc", "") {
		t.Error("TokenMatches")
	}
}
