package gateway

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
)

func TestFailureLimiter(t *testing.T) {
	l := newFailureLimiter(3, time.Minute, 100) // one forgiven every 20s
	t0 := time.Unix(1_000_000, 0)
	for i := range 3 {
		if w := l.wait("a", t0); w != 0 {
			t.Fatalf("after %d failures wait %v; want 0", i, w)
		}
		l.fail("a", t0)
	}
	if w := l.wait("a", t0); w != 20*time.Second {
		t.Errorf("after 3 failures wait %v; want 20s", w)
	}
	if w := l.wait("b", t0); w != 0 {
		t.Errorf("another address waits %v; want 0", w)
	}
	if w := l.wait("a", t0.Add(15*time.Second)); w != 5*time.Second {
		t.Errorf("15s later wait %v; want 5s", w)
	}
	if w := l.wait("a", t0.Add(20*time.Second)); w != 0 {
		t.Errorf("20s later wait %v; want 0: one more try", w)
	}
	l.fail("a", t0.Add(20*time.Second))
	if w := l.wait("a", t0.Add(20*time.Second)); w <= 0 {
		t.Error("a failure right after the refill was not counted")
	}
}

func TestFailureLimiterIsBounded(t *testing.T) {
	l := newFailureLimiter(2, time.Minute, 50)
	t0 := time.Unix(1_000_000, 0)
	for i := range 200 {
		l.fail(fmt.Sprintf("10.0.0.%d", i), t0)
		if n := l.size(); n > 50 {
			t.Fatalf("%d addresses remembered; want at most 50", n)
		}
	}
	// Addresses whose bucket refilled are forgotten first.
	l.fail("10.9.9.9", t0.Add(time.Hour))
	if n := l.size(); n != 1 {
		t.Errorf("%d addresses remembered an hour later; want only the new one", n)
	}
}

// TestBadTokensAreRateLimitedPerAddress: after the burst of bad bearer
// tokens, the address gets 429 with Retry-After even for a good token, and
// JSON; another address is unaffected; sign-in form failures count the same.
func TestBadTokensAreRateLimitedPerAddress(t *testing.T) {
	h := New(Options{Config: uiTestConfig(t, uiConfig), Logger: zap.NewNop(), AuthFailureBurst: 3, AuthFailureWindow: time.Hour})
	api := func(addr, token string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", "/api/v1/workspaces", nil)
		req.RemoteAddr = addr + ":4242"
		req.Header.Set("Authorization", "Bearer "+token)
		// A client may claim any address: it is not believed.
		req.Header.Set("X-Forwarded-For", "198.51.100."+strconv.Itoa(len(token)))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for i := range 3 {
		if rec := api("192.0.2.1", "wrong"+strconv.Itoa(i)); rec.Code != http.StatusUnauthorized {
			t.Fatalf("bad token %d: %d; want 401", i, rec.Code)
		}
	}
	rec := api("192.0.2.1", "t-alice")
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), `"error"`) {
		t.Fatalf("good token after the burst: %d %q %s; want 429 with Retry-After and a JSON error", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	if rec := api("192.0.2.2", "t-alice"); rec.Code != http.StatusOK {
		t.Errorf("another address: %d; want 200", rec.Code)
	}
	// Good tokens do not count.
	for range 5 {
		if rec := api("192.0.2.3", "t-bob"); rec.Code != http.StatusOK {
			t.Fatalf("good tokens: %d; want 200", rec.Code)
		}
	}
	// The sign-in form shares the address's budget.
	form := url.Values{"token": {"t-alice"}}
	req := httptest.NewRequest("POST", "/ui/login", strings.NewReader(form.Encode()))
	req.RemoteAddr = "192.0.2.1:5000"
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	login := httptest.NewRecorder()
	h.ServeHTTP(login, req)
	if login.Code != http.StatusTooManyRequests || login.Header().Get("Retry-After") == "" || !strings.Contains(login.Body.String(), "too many failed sign-ins") {
		t.Errorf("sign-in form from the limited address: %d %q; want 429 with Retry-After on the sign-in page", login.Code, login.Header().Get("Retry-After"))
	}
}

func TestClientAddrBelievesOnlyTrustedProxies(t *testing.T) {
	yaml := strings.Replace(uiConfig, "workspaces:", "trusted_proxies: [10.0.0.0/8, 192.0.2.7]\nworkspaces:", 1)
	s := &server{Options: Options{Config: uiTestConfig(t, yaml)}}
	for _, tc := range []struct {
		peer, xff, want string
	}{
		{"198.51.100.1:1", "203.0.113.5", "198.51.100.1"},                // not a proxy: its header is not believed
		{"10.1.2.3:1", "203.0.113.5", "203.0.113.5"},                     // a trusted proxy names the client
		{"10.1.2.3:1", "6.6.6.6, 203.0.113.5, 192.0.2.7", "203.0.113.5"}, // through two proxies; the client's own entry ignored
		{"10.1.2.3:1", "", "10.1.2.3"},                                   // no header: the proxy itself
		{"10.1.2.3:1", "not-an-ip, 203.0.113.5", "203.0.113.5"},          // garbage left of the first untrusted hop is ignored
		{"10.1.2.3:1", "203.0.113.5, garbage", "10.1.2.3"},               // garbage from the proxy: the proxy
		{"[::ffff:10.1.2.3]:1", "203.0.113.5", "203.0.113.5"},            // IPv4-mapped peer
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = tc.peer
		if tc.xff != "" {
			req.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := s.clientAddr(echo.New().NewContext(req, httptest.NewRecorder())); got != tc.want {
			t.Errorf("peer %s, X-Forwarded-For %q: client %q; want %q", tc.peer, tc.xff, got, tc.want)
		}
	}
}
