package tests

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/oidctest"
)

// oidcBlock is the oidc block of the SSO tests: provider group idp-platform
// makes approvers of the platform group, idp-auditors viewers.
const oidcBlock = `oidc:
  issuer: ISSUER
  client_id: gatehouse-e2e
  client_secret: idp-secret
  redirect_url: http://gatehouse.test/ui/oidc/callback
  groups: {idp-platform: platform}
  roles: {idp-platform: approver, idp-auditors: viewer}
`

// ssoBrowser is a person's browser: a cookie jar, redirects followed by
// hand so that the provider's redirect to the (unresolvable) registered
// callback host lands on the test gateway.
type ssoBrowser struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newSSOBrowser(t *testing.T, base string) *ssoBrowser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &ssoBrowser{t: t, base: base, client: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *ssoBrowser) do(method, rawURL string, form url.Values) (int, http.Header, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, rawURL, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(data)
}

// signIn goes through single sign-on: the gateway's login, the provider's
// authorize, the gateway's callback. It returns the callback's status.
func (b *ssoBrowser) signIn() int {
	b.t.Helper()
	status, h, body := b.do("GET", b.base+"/ui/oidc/login", nil)
	if status != http.StatusFound {
		b.t.Fatalf("oidc login: %d\n%s", status, body)
	}
	status, h, _ = b.do("GET", h.Get("Location"), nil)
	back, err := url.Parse(h.Get("Location"))
	if status != http.StatusFound || err != nil || back.Path != "/ui/oidc/callback" {
		b.t.Fatalf("provider: %d to %q; want the callback", status, h.Get("Location"))
	}
	status, _, body = b.do("GET", b.base+back.RequestURI(), nil)
	if status >= 400 {
		b.t.Logf("callback refused: %d\n%s", status, body)
	}
	return status
}

var (
	csrfField   = regexp.MustCompile(`name="_csrf" value="([^"]*)"`)
	reasonField = regexp.MustCompile(`name="reason_ids" value="([^"]*)"`)
)

// TestOIDCSignInApprovesThroughTheWebUI: a person the config does not list
// signs in through the identity provider, their provider group makes them
// a platform approver, they approve a run with the run page's form, the
// worker accepts the decision (an SSO identity the mappings admit), and the
// trail says who: source sso, channel ui. A viewer by mapping sees no
// approve form, and posting it anyway is refused.
func TestOIDCSignInApprovesThroughTheWebUI(t *testing.T) {
	idp := oidctest.New(t, "gatehouse-e2e", "idp-secret")
	s := newStack(t, stackOptions{workspaces: strings.Replace(oidcBlock, "ISSUER", idp.URL, 1)})
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	page := s.url + "/ui/workspaces/prod-network/runs/" + url.PathEscape(run.ID)

	nick := newSSOBrowser(t, s.url)
	idp.SignIn(map[string]any{"email": "nick@example.com", "email_verified": true, "groups": []string{"idp-platform", "idp-unmapped"}})
	if status := nick.signIn(); status != http.StatusSeeOther {
		t.Fatalf("SSO sign-in: %d; want 303", status)
	}
	status, _, body := nick.do("GET", page, nil)
	if status != http.StatusOK || !strings.Contains(body, `id="form-approve"`) || !strings.Contains(body, "nick@example.com") {
		t.Fatalf("run page for nick: %d, approve form %v\n%s", status, strings.Contains(body, `id="form-approve"`), body)
	}
	form := url.Values{"_csrf": {csrfField.FindStringSubmatch(body)[1]}, "comment": {"checked via SSO"}}
	for _, m := range reasonField.FindAllStringSubmatch(body, -1) {
		form.Add("reason_ids", m[1])
	}
	status, h, body := nick.do("POST", page+"/approve", form)
	if status != http.StatusSeeOther || h.Get("Location") == "" {
		t.Fatalf("approve form: %d\n%s", status, body)
	}
	_, _, body = nick.do("GET", s.url+h.Get("Location"), nil)
	if !strings.Contains(body, "You approved run") {
		t.Fatalf("after approving, the page says no success:\n%s", body)
	}

	events := s.trail(run, "t-erin", approval.AuditApproved)
	last := events[len(events)-1]
	if last.Actor.ID != "nick@example.com" || last.Actor.Source != approval.SourceSSO || last.Actor.Channel != approval.ChannelUI {
		t.Errorf("trail's approval by %+v; want nick@example.com, source sso, channel ui", last.Actor)
	}
	// The second approval applies the run.
	s.decide(run, "approve", "t-bob", map[string]any{}, http.StatusOK)
	if got := s.waitFor(run, approval.StatusApplied); len(got.Decisions) != 2 {
		t.Errorf("decisions %+v; want nick's and bob's", got.Decisions)
	}

	// A viewer by mapping reads the run but cannot decide on it.
	run2 := s.createRun("prod-network", "t-alice", "prod-network.json")
	page2 := s.url + "/ui/workspaces/prod-network/runs/" + url.PathEscape(run2.ID)
	vera := newSSOBrowser(t, s.url)
	idp.SignIn(map[string]any{"email": "vera@example.com", "groups": []string{"idp-auditors"}})
	if status := vera.signIn(); status != http.StatusSeeOther {
		t.Fatalf("viewer SSO sign-in: %d", status)
	}
	status, _, body = vera.do("GET", page2, nil)
	if status != http.StatusOK || strings.Contains(body, `id="form-approve"`) {
		t.Fatalf("run page for a viewer: %d, approve form shown %v", status, strings.Contains(body, `id="form-approve"`))
	}
	status, h, _ = vera.do("POST", page2+"/approve", url.Values{"_csrf": {csrfField.FindStringSubmatch(body)[1]}, "reason_ids": {run2.Reasons[0].ID}})
	_, _, flash := vera.do("GET", s.url+h.Get("Location"), nil)
	if status != http.StatusSeeOther || !strings.Contains(flash, "Not done") {
		t.Errorf("a viewer's approve form: %d; want it refused with a message\n%s", status, flash)
	}
	if got := s.get(run2); len(got.Decisions) != 0 {
		t.Errorf("decisions %+v after the viewer's post; want none", got.Decisions)
	}

	// A provider sign-in naming a local account is refused: 403, no session.
	mallory := newSSOBrowser(t, s.url)
	idp.SignIn(map[string]any{"email": "ci-bot", "groups": []string{"idp-platform"}})
	if status := mallory.signIn(); status != http.StatusForbidden {
		t.Errorf("SSO sign-in as the local ci-bot: %d; want 403", status)
	}
	if status, _, _ := mallory.do("GET", s.url+"/ui/", nil); status != http.StatusSeeOther {
		t.Errorf("after a refused sign-in /ui/ answers %d; want the redirect to sign in", status)
	}
}

// TestOIDCSignInRateLimitsBadTokens: on the real gateway, the burst of bad
// tokens from one address gets it 429 with Retry-After, even for a good
// token; another address is unaffected; once the bucket refills, the good
// token works again.
func TestOIDCSignInRateLimitsBadTokens(t *testing.T) {
	s := newStack(t, stackOptions{gateway: func(o *gateway.Options) {
		o.AuthFailureBurst, o.AuthFailureWindow = 3, 3*time.Second
	}})
	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}}}
	}
	get := func(c *http.Client, token string) *http.Response {
		req, _ := http.NewRequest("GET", s.url+"/api/v1/workspaces", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	one, two := from("127.0.0.1"), from("127.0.0.2")
	for i := range 3 {
		if r := get(one, "guess"); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("bad token %d: %d; want 401", i, r.StatusCode)
		}
	}
	r := get(one, "t-alice")
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("good token after the burst: %d, Retry-After %q; want 429 with it", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if r := get(two, "t-alice"); r.StatusCode != http.StatusOK {
		t.Errorf("another address: %d; want 200", r.StatusCode)
	}
	deadline := time.Now().Add(20 * time.Second)
	for get(one, "t-alice").StatusCode != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the good token is still refused long after the window")
		}
		time.Sleep(200 * time.Millisecond)
	}
}
