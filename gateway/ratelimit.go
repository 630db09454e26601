package gateway

import (
	"errors"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// Authentication failures are limited per client address, so tokens cannot
// be guessed at speed: every failed attempt (a bad or expired bearer token,
// a bad token on the sign-in page, a single sign-on callback that fails)
// takes one from the address's bucket, which refills at Burst per Window.
// An address with an empty bucket is answered 429, with Retry-After, for
// every attempt, right or wrong, until the bucket has refilled by one:
// otherwise the answers would still tell right from wrong. Successful
// sign-ins take nothing.
const (
	// DefaultAuthFailureBurst failures are allowed at once per address, and
	// refilled over DefaultAuthFailureWindow.
	DefaultAuthFailureBurst  = 10
	DefaultAuthFailureWindow = time.Minute
	// maxFailureEntries bounds the addresses remembered at once.
	maxFailureEntries = 10000
)

// failureLimiter counts authentication failures per client address.
type failureLimiter struct {
	every time.Duration // one failure forgiven per every
	burst int
	max   int

	mu      sync.Mutex
	entries map[string]*rate.Limiter
}

func newFailureLimiter(burst int, window time.Duration, max int) *failureLimiter {
	if burst <= 0 {
		burst = DefaultAuthFailureBurst
	}
	if window <= 0 {
		window = DefaultAuthFailureWindow
	}
	return &failureLimiter{every: window / time.Duration(burst), burst: burst, max: max, entries: map[string]*rate.Limiter{}}
}

// wait is how long addr must wait before it may try again at now; 0 means
// it may now. A nil limiter (a server built without New) limits nothing.
func (l *failureLimiter) wait(addr string, now time.Time) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.entries[addr]
	if !ok {
		return 0
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - tokens) * float64(l.every)))
}

// fail records a failed attempt of addr at now.
func (l *failureLimiter) fail(addr string, now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.entries[addr]
	if !ok {
		if len(l.entries) >= l.max {
			l.sweep(now)
		}
		if len(l.entries) >= l.max {
			// Every remembered address is failing right now: forget
			// one (the map's order is as good as any) rather than grow
			// without bound.
			for k := range l.entries {
				delete(l.entries, k)
				break
			}
		}
		lim = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.entries[addr] = lim
	}
	lim.AllowN(now, 1)
}

// sweep forgets the addresses whose bucket is full again: they are as good
// as never seen. The caller holds mu.
func (l *failureLimiter) sweep(now time.Time) {
	for k, lim := range l.entries {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.entries, k)
		}
	}
}

// size is how many addresses are remembered.
func (l *failureLimiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// clientAddr is who the limiter counts a request against: the TCP peer's
// address, unless the peer is one of the config's trusted_proxies; then
// the right-most X-Forwarded-For entry that is not a trusted proxy (the
// client as the first trusted proxy saw it). Entries left of it are the
// client's own word and are ignored; so is the header of any other peer.
func (s *server) clientAddr(c echo.Context) string {
	r := c.Request()
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = strings.TrimSpace(r.RemoteAddr)
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !s.trusted(peer) {
		return host
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	client := host
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // garbage: keep the last hop we could trust
		}
		client = a.Unmap().String()
		if !s.trusted(a) {
			break
		}
	}
	return client
}

// trusted reports whether a is one of the config's trusted proxies.
func (s *server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.Config.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// throttled answers, for an address that failed to authenticate too often,
// the rate-limited error the handlers return (429 with Retry-After); nil
// when it may try.
func (s *server) throttled(c echo.Context) error {
	wait := s.authFailures.wait(s.clientAddr(c), time.Now())
	if wait <= 0 {
		return nil
	}
	return &approval.Error{Code: approval.CodeRateLimited, RetryAfter: wait,
		Message: "too many failed sign-ins from your address: try again later"}
}

// authFailed records a failed authentication of the request's client, and
// logs when that failure used up the address's budget: once per lock-out,
// since a locked-out address is answered before it can fail again.
func (s *server) authFailed(c echo.Context) {
	addr, now := s.clientAddr(c), time.Now()
	s.authFailures.fail(addr, now)
	if wait := s.authFailures.wait(addr, now); wait > 0 && s.Logger != nil {
		s.Logger.Warn("authentication failures rate-limited", zap.String("client", addr),
			zap.String("path", c.Path()), zap.Duration("retry_after", wait))
	}
}

// renderThrottled shows the sign-in page with the rate limit's answer: 429
// and Retry-After.
func (u *webUI) renderThrottled(c echo.Context, err error) error {
	var de *approval.Error
	if errors.As(err, &de) && de.RetryAfter > 0 {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(de.RetryAfter.Seconds()))))
	}
	return u.renderLogin(c, http.StatusTooManyRequests, err.Error())
}
