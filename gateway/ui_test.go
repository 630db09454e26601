package gateway

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
)

const uiConfig = `
users:
  - {id: alice, email: alice@example.com, groups: [platform], roles: [approver], token: t-alice}
  - {id: bob, email: bob@example.com, groups: [platform], roles: [approver], token: t-bob}
  - {id: victor, email: victor@example.com, roles: [viewer], token: t-victor}
workspaces:
  - name: net
    rules: [{name: r, approvers: {groups: [platform]}}]
`

func uiTestConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// browser is a minimal cookie-keeping client that does not follow
// redirects, so tests see each answer.
type browser struct {
	t       *testing.T
	url     string
	cookies map[string]*http.Cookie
	// header is sent with every request (e.g. Sec-Fetch-Site).
	header http.Header
}

func newBrowser(t *testing.T, opts Options) *browser {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	srv := httptest.NewServer(New(opts))
	t.Cleanup(srv.Close)
	return &browser{t: t, url: srv.URL, cookies: map[string]*http.Cookie{}, header: http.Header{}}
}

type page struct {
	status  int
	header  http.Header
	body    string
	cookies []*http.Cookie
}

func (b *browser) do(method, path string, form url.Values) page {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.url+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range b.header {
		req.Header[k] = vs
	}
	for _, c := range b.cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(data), cookies: resp.Cookies()}
}

var csrfInput = regexp.MustCompile(`name="_csrf" value="([^"]*)"`)

// csrf is the token of the first form on a page.
func (p page) csrf(t *testing.T) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF field on the page:\n%s", p.body)
	}
	return m[1]
}

func (p page) cookie(name string) *http.Cookie {
	for _, c := range p.cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// signIn signs in with a token through the sign-in form.
func (b *browser) signIn(token string) page {
	b.t.Helper()
	login := b.do("GET", "/ui/login", nil)
	return b.do("POST", "/ui/login", url.Values{"_csrf": {login.csrf(b.t)}, "token": {token}, "next": {"/ui/runs"}})
}

func TestUILoginSetsSessionCookie(t *testing.T) {
	for _, dev := range []bool{false, true} {
		b := newBrowser(t, Options{Config: uiTestConfig(t, uiConfig), Dev: dev})
		p := b.signIn("t-alice")
		if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/runs" {
			t.Fatalf("dev=%v: sign in: %d to %q; want 303 to /ui/runs\n%s", dev, p.status, p.header.Get("Location"), p.body)
		}
		c := p.cookie(sessionCookie)
		if c == nil {
			t.Fatalf("dev=%v: no session cookie", dev)
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" {
			t.Errorf("dev=%v: session cookie %+v; want HttpOnly, SameSite=Lax, Path=/", dev, c)
		}
		if c.Secure == dev {
			t.Errorf("dev=%v: session cookie Secure=%v; want Secure outside dev only", dev, c.Secure)
		}
		if c.MaxAge != int(SessionTTL/time.Second) {
			t.Errorf("dev=%v: session cookie Max-Age %d; want %d", dev, c.MaxAge, int(SessionTTL/time.Second))
		}
		if csrf := b.cookies[csrfCookie]; csrf == nil || !csrf.HttpOnly || csrf.SameSite != http.SameSiteStrictMode || csrf.Secure == dev {
			t.Errorf("dev=%v: CSRF cookie %+v; want HttpOnly, SameSite=Strict, Secure outside dev", dev, csrf)
		}
		// Signed in, the sign-in page sends the browser on.
		if p := b.do("GET", "/ui/login", nil); p.status != http.StatusSeeOther {
			t.Errorf("dev=%v: sign-in page when signed in: %d; want 303", dev, p.status)
		}
	}
}

func TestUIBadTokenShowsErrorAndSetsNoCookie(t *testing.T) {
	b := newBrowser(t, Options{Config: uiTestConfig(t, uiConfig)})
	p := b.signIn("t-nobody")
	if p.status != http.StatusUnauthorized || !strings.Contains(p.body, "that token does not belong to any user") {
		t.Fatalf("bad token: %d; want 401 with the reason\n%s", p.status, p.body)
	}
	if p.cookie(sessionCookie) != nil || b.cookies[sessionCookie] != nil {
		t.Errorf("bad token set a session cookie")
	}
	if !strings.Contains(p.body, `aria-invalid="true"`) {
		t.Errorf("the token field is not marked invalid")
	}
	if p := b.do("GET", "/ui/", nil); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/ui/login") {
		t.Errorf("inbox after a refused sign-in: %d to %q; want the sign-in page", p.status, p.header.Get("Location"))
	}
}

func TestUIPostWithoutCSRFIsRefused(t *testing.T) {
	b := newBrowser(t, Options{Config: uiTestConfig(t, uiConfig)})
	// The sign-in form itself.
	b.do("GET", "/ui/login", nil)
	p := b.do("POST", "/ui/login", url.Values{"token": {"t-alice"}})
	if p.status != http.StatusForbidden || !strings.Contains(p.body, "CSRF token is missing or invalid") || !strings.Contains(p.header.Get("Content-Type"), "text/html") {
		t.Fatalf("sign in without a CSRF token: %d %s; want a 403 page\n%s", p.status, p.header.Get("Content-Type"), p.body)
	}
	if b.cookies[sessionCookie] != nil {
		t.Fatal("a sign-in without a CSRF token set a session")
	}
	p = b.do("POST", "/ui/login", url.Values{"token": {"t-alice"}, "_csrf": {"forged"}})
	if p.status != http.StatusForbidden {
		t.Fatalf("sign in with a forged CSRF token: %d; want 403", p.status)
	}

	// A decision form of a signed-in user: refused before anything reads
	// the run (this gateway has no Temporal client to read it with).
	if p := b.signIn("t-alice"); p.status != http.StatusSeeOther {
		t.Fatalf("sign in: %d", p.status)
	}
	for _, action := range []string{"approve", "reject", "request-changes", "revoke", "cancel", "bypass"} {
		p := b.do("POST", "/ui/workspaces/net/runs/run-1/"+action, url.Values{"comment": {"ok"}})
		if p.status != http.StatusForbidden || !strings.Contains(p.body, "nothing was done") {
			t.Errorf("%s without a CSRF token: %d; want 403\n%s", action, p.status, p.body)
		}
	}
	// Nor does a browser's cross-site post get through, token or not.
	b.header.Set("Sec-Fetch-Site", "cross-site")
	if p := b.do("POST", "/ui/workspaces/net/runs/run-1/approve", url.Values{"reason_ids": {"rule:r"}}); p.status != http.StatusForbidden {
		t.Errorf("cross-site approve: %d; want 403", p.status)
	}
	// Logging out needs the token too.
	b.header.Del("Sec-Fetch-Site")
	if p := b.do("POST", "/ui/logout", url.Values{}); p.status != http.StatusForbidden {
		t.Errorf("logout without a CSRF token: %d; want 403", p.status)
	}
}

func TestUIDevPickerOnlyInDev(t *testing.T) {
	cfg := uiTestConfig(t, uiConfig)
	prod := newBrowser(t, Options{Config: cfg})
	login := prod.do("GET", "/ui/login", nil)
	if strings.Contains(login.body, `name="user"`) || strings.Contains(login.body, "Development: sign in as") {
		t.Errorf("the sign-in page outside dev offers the user picker")
	}
	p := prod.do("POST", "/ui/login", url.Values{"_csrf": {login.csrf(t)}, "user": {"alice"}})
	if p.status != http.StatusUnauthorized || prod.cookies[sessionCookie] != nil || !strings.Contains(p.body, "only available in gatehouse dev") {
		t.Errorf("picking a user outside dev: %d, cookie %v; want 401 and no session\n%s", p.status, prod.cookies[sessionCookie], p.body)
	}

	dev := newBrowser(t, Options{Config: cfg, Dev: true})
	login = dev.do("GET", "/ui/login", nil)
	for _, id := range []string{"alice", "bob", "victor"} {
		if !strings.Contains(login.body, `name="user" value="`+id+`"`) {
			t.Errorf("the dev picker has no button for %s", id)
		}
	}
	p = dev.do("POST", "/ui/login", url.Values{"_csrf": {login.csrf(t)}, "user": {"bob"}, "next": {"/ui/runs"}})
	if p.status != http.StatusSeeOther || dev.cookies[sessionCookie] == nil {
		t.Fatalf("dev pick: %d; want 303 with a session", p.status)
	}
	// A dev session means nothing to a gateway that is not dev, even with
	// the same key.
	key := []byte("0123456789abcdef0123456789abcdef")
	devKeyed := newBrowser(t, Options{Config: cfg, Dev: true, SessionKey: key})
	login = devKeyed.do("GET", "/ui/login", nil)
	devKeyed.do("POST", "/ui/login", url.Values{"_csrf": {login.csrf(t)}, "user": {"bob"}})
	prodKeyed := newBrowser(t, Options{Config: cfg, SessionKey: key})
	prodKeyed.cookies[sessionCookie] = devKeyed.cookies[sessionCookie]
	if p := prodKeyed.do("GET", "/ui/runs", nil); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/ui/login") {
		t.Errorf("dev session on a production gateway: %d to %q; want the sign-in page", p.status, p.header.Get("Location"))
	}
}

func TestUISessionIsCheckedOnEveryRequest(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	cfg := uiTestConfig(t, uiConfig)
	b := newBrowser(t, Options{Config: cfg, SessionKey: key})
	b.signIn("t-bob")
	session := b.cookies[sessionCookie]
	signedOut := func(what string, opts Options) {
		t.Helper()
		other := newBrowser(t, opts)
		other.cookies[sessionCookie] = session
		p := other.do("GET", "/ui/workspaces/nope/runs/run-1", nil)
		if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/login?next="+url.QueryEscape("/ui/workspaces/nope/runs/run-1") {
			t.Errorf("%s: %d to %q; want the sign-in page", what, p.status, p.header.Get("Location"))
		}
	}
	// Another replica with the same key shares the session: it gets past
	// the session to the workspace check.
	same := newBrowser(t, Options{Config: cfg, SessionKey: key})
	same.cookies[sessionCookie] = session
	if p := same.do("GET", "/ui/workspaces/nope/runs/run-1", nil); p.status != http.StatusNotFound || !strings.Contains(p.body, `workspace &#34;nope&#34; not found`) {
		t.Errorf("same key: %d; want the 404 page of a signed-in user\n%s", p.status, p.body)
	}
	signedOut("another key", Options{Config: cfg, SessionKey: []byte("another-key-another-key-another-k")})
	signedOut("user removed from the config", Options{Config: uiTestConfig(t, strings.Replace(uiConfig,
		"  - {id: bob, email: bob@example.com, groups: [platform], roles: [approver], token: t-bob}\n", "", 1)), SessionKey: key})
	signedOut("token changed", Options{Config: uiTestConfig(t, strings.Replace(uiConfig, "token: t-bob", "token: t-bob-2", 1)), SessionKey: key})

	// A tampered or expired session is no session.
	payload, _ := verify(mustKeys(key), session.Value)
	var sess map[string]any
	if err := json.Unmarshal(payload, &sess); err != nil {
		t.Fatal(err)
	}
	sess["u"] = "alice"
	forged, _ := json.Marshal(sess)
	parts := strings.SplitN(session.Value, ".", 2)
	tampered := newBrowser(t, Options{Config: cfg, SessionKey: key})
	tampered.cookies[sessionCookie] = &http.Cookie{Name: sessionCookie, Value: base64.RawURLEncoding.EncodeToString(forged) + "." + parts[1]}
	if p := tampered.do("GET", "/ui/runs", nil); p.status != http.StatusSeeOther {
		t.Errorf("tampered session: %d; want the sign-in page", p.status)
	}
	sess["u"], sess["exp"] = "bob", float64(time.Now().Add(-time.Minute).Unix())
	expiredPayload, _ := json.Marshal(sess)
	expired := newBrowser(t, Options{Config: cfg, SessionKey: key})
	expired.cookies[sessionCookie] = &http.Cookie{Name: sessionCookie, Value: sign(mustKeys(key), expiredPayload)}
	if p := expired.do("GET", "/ui/runs", nil); p.status != http.StatusSeeOther {
		t.Errorf("expired session: %d; want the sign-in page", p.status)
	}

	// Signing out clears the cookie.
	login := b.do("GET", "/ui/workspaces/nope/runs/run-1", nil)
	p := b.do("POST", "/ui/logout", url.Values{"_csrf": {login.csrf(t)}})
	if c := p.cookie(sessionCookie); p.status != http.StatusSeeOther || c == nil || c.MaxAge >= 0 {
		t.Errorf("logout: %d, cookie %+v; want 303 clearing the session", p.status, c)
	}
}

func mustKeys(key []byte) []byte {
	s, _ := uiKeys(key)
	return s
}

func TestUIRoutesAndHeaders(t *testing.T) {
	b := newBrowser(t, Options{Config: uiTestConfig(t, uiConfig)})
	if p := b.do("GET", "/", nil); p.status != http.StatusFound || p.header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d to %q; want a redirect to /ui/", p.status, p.header.Get("Location"))
	}
	if p := b.do("GET", "/ui/", nil); p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/login?next=%2Fui%2F" {
		t.Errorf("inbox signed out: %d to %q; want the sign-in page", p.status, p.header.Get("Location"))
	}
	login := b.do("GET", "/ui/login", nil)
	for _, want := range []string{`<html lang="en">`, `name="viewport"`, `<label for="token">`, `/ui/static/app.css?v=`} {
		if !strings.Contains(login.body, want) {
			t.Errorf("sign-in page lacks %s", want)
		}
	}
	if csp := login.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if login.header.Get("Cache-Control") != "no-store" {
		t.Errorf("sign-in page Cache-Control %q; want no-store", login.header.Get("Cache-Control"))
	}
	for _, asset := range []string{"app.css", "app.js"} {
		p := b.do("GET", "/ui/static/"+asset, nil)
		if p.status != http.StatusOK || len(p.body) < 100 {
			t.Errorf("GET %s: %d, %d bytes", asset, p.status, len(p.body))
		}
	}
	if p := b.do("GET", "/ui/nope", nil); p.status != http.StatusNotFound || !strings.Contains(p.body, "There is no such page") {
		t.Errorf("unknown page: %d\n%s", p.status, p.body)
	}
	// The live endpoint is for scripts: a signed-out poll is a JSON 401.
	if p := b.do("GET", "/ui/workspaces/net/runs/run-1/live", nil); p.status != http.StatusUnauthorized || !strings.Contains(p.body, `"error"`) {
		t.Errorf("live signed out: %d %s; want a JSON 401", p.status, p.body)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                         "/ui/",
		"/ui/runs?status=x":        "/ui/runs?status=x",
		"//evil.example/":          "/ui/",
		"https://evil.example/ui/": "/ui/",
		"/ui/login":                "/ui/",
		"/api/v1/workspaces":       "/ui/",
		"/ui/\\evil":               "/ui/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestUILinks(t *testing.T) {
	cfg := uiTestConfig(t, "temporal_ui_url: https://temporal.example/\n"+uiConfig)
	u := (&server{Options: Options{Config: cfg, Logger: zap.NewNop(), Namespace: "gatehouse"}}).newUI()
	run := approval.Run{
		ID: "run-1", Workspace: "net",
		External: &approval.External{Provider: approval.ProviderJira, Ref: "CHG-42", Link: "https://jira.example/browse/CHG-42"},
		Messages: []approval.MessageRef{
			{Kind: "slack", Channel: "C0123", TS: "1700000000.123456"},
			{Kind: "slack", Channel: "D0456", TS: "1700000001.000001", User: "bob"}, // a DM: nobody else's to open
		},
	}
	got := u.links(run)
	want := []link{
		{"Workflow in the Temporal Web UI", "https://temporal.example/namespaces/gatehouse/workflows/run-1"},
		{"Ticket CHG-42 (jira)", "https://jira.example/browse/CHG-42"},
		{"Slack message", "https://slack.com/archives/C0123/p1700000000123456"},
	}
	if len(got) != len(want) {
		t.Fatalf("links %+v; want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("link %d: %+v; want %+v", i, got[i], want[i])
		}
	}
	// A ticket link that is not http(s) is not a link.
	run.External.Link = "javascript:alert(1)"
	run.Messages = nil
	if got := u.links(run); len(got) != 1 {
		t.Errorf("links %+v; want only Temporal's", got)
	}
}

// TestUIExpiredTokenEndsItsSession: a token past its token_expires cannot
// sign in, and a session opened with it before ends at that instant.
func TestUIExpiredTokenEndsItsSession(t *testing.T) {
	cfg := uiTestConfig(t, `
users:
  - {id: alice, email: alice@example.com, groups: [platform], roles: [approver], token: t-alice, token_expires: "2999-01-01T00:00:00Z"}
  - {id: bob, email: bob@example.com, groups: [platform], roles: [approver], token: t-bob, token_expires: "2001-01-01T00:00:00Z"}
workspaces:
  - name: net
    rules: [{name: r, approvers: {groups: [platform]}}]
`)
	b := newBrowser(t, Options{Config: cfg})
	if p := b.signIn("t-bob"); p.status != http.StatusUnauthorized || !strings.Contains(p.body, "that token has expired") || b.cookies[sessionCookie] != nil {
		t.Fatalf("expired token: %d, cookie %v; want 401 saying it expired, no session\n%s", p.status, b.cookies[sessionCookie], p.body)
	}
	if p := b.signIn("t-alice"); p.status != http.StatusSeeOther {
		t.Fatalf("sign in before expiry: %d; want 303\n%s", p.status, p.body)
	}
	// The sign-in page sends a signed-in browser on, and shows itself to a
	// signed-out one.
	if p := b.do("GET", "/ui/login", nil); p.status != http.StatusSeeOther {
		t.Fatalf("sign-in page while the token is valid: %d; want 303 (signed in)", p.status)
	}
	// The expiry passes: the session is checked against the config's user
	// on each request.
	cfg.Users[0].TokenExpires = time.Now().Add(-time.Second)
	if p := b.do("GET", "/ui/login", nil); p.status != http.StatusOK {
		t.Errorf("sign-in page after the token expired: %d; want 200 (signed out)", p.status)
	}
	if p := b.do("GET", "/ui/", nil); p.status != http.StatusSeeOther || !strings.HasPrefix(p.header.Get("Location"), "/ui/login") {
		t.Errorf("inbox after the token expired: %d to %q; want the sign-in page", p.status, p.header.Get("Location"))
	}
}
