package gateway

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/oidctest"
)

// ssoGatewayConfig is uiConfig with single sign-on through issuer ISSUER.
const ssoGatewayConfig = `
users:
  - {id: alice, email: alice@example.com, groups: [platform], roles: [approver], token: t-alice}
  - {id: lena@example.com, email: lena@example.com, source: local, roles: [approver], token: t-lena}
oidc:
  issuer: ISSUER
  client_id: gatehouse-ui
  client_secret: idp-secret
  redirect_url: http://gatehouse.test/ui/oidc/callback
  groups: {idp-platform: platform}
  roles: {idp-platform: approver, idp-ops: admin}
workspaces:
  - name: net
    rules: [{name: r, approvers: {groups: [platform]}}]
`

func newSSOBrowser(t *testing.T) (*browser, *oidctest.Provider) {
	t.Helper()
	idp := oidctest.New(t, "gatehouse-ui", "idp-secret")
	cfg := uiTestConfig(t, strings.Replace(ssoGatewayConfig, "ISSUER", idp.URL, 1))
	return newBrowser(t, Options{Config: cfg}), idp
}

// ssoSignIn goes through the flow as a browser would: the gateway sends it
// to the provider, the provider back with a code. tweak may change the
// callback's query before it is followed. It returns the callback's answer.
func (b *browser) ssoSignIn(tweak func(url.Values)) page {
	b.t.Helper()
	start := b.do("GET", "/ui/oidc/login?next=/ui/runs", nil)
	if start.status != http.StatusFound {
		b.t.Fatalf("oidc login: %d; want 302 to the provider\n%s", start.status, start.body)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(start.header.Get("Location"))
	if err != nil {
		b.t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || back.Path != "/ui/oidc/callback" {
		b.t.Fatalf("provider answered %d to %q; want a redirect to the callback", resp.StatusCode, resp.Header.Get("Location"))
	}
	q := back.Query()
	if tweak != nil {
		tweak(q)
	}
	return b.do("GET", back.Path+"?"+q.Encode(), nil)
}

// signedIn reports whether the browser has a session, by the sign-in
// page's redirect.
func (b *browser) signedIn() bool {
	b.t.Helper()
	return b.do("GET", "/ui/login", nil).status == http.StatusSeeOther
}

func TestOIDCSignInStartsAnSSOSession(t *testing.T) {
	b, idp := newSSOBrowser(t)
	login := b.do("GET", "/ui/login", nil)
	if !strings.Contains(login.body, `href="/ui/oidc/login?next=`) {
		t.Fatalf("sign-in page offers no SSO:\n%s", login.body)
	}
	start := b.do("GET", "/ui/oidc/login", nil)
	loc, _ := url.Parse(start.header.Get("Location"))
	q := loc.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" || q.Get("state") == "" || !strings.Contains(q.Get("scope"), "openid") {
		t.Errorf("authorize URL %s; want PKCE S256, a nonce, a state and the openid scope", loc)
	}
	flow := start.cookie(oidcCookie)
	if flow == nil || !flow.HttpOnly || flow.SameSite != http.SameSiteLaxMode || flow.Path != oidcCookiePath {
		t.Errorf("flow cookie %+v; want HttpOnly, SameSite=Lax on %s", flow, oidcCookiePath)
	}

	idp.SignIn(map[string]any{"email": "Nick@example.com", "email_verified": true, "groups": []string{"idp-platform", "unmapped"}})
	p := b.ssoSignIn(nil)
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/ui/runs" || p.cookie(sessionCookie) == nil {
		t.Fatalf("callback: %d to %q; want 303 to /ui/runs with a session\n%s", p.status, p.header.Get("Location"), p.body)
	}
	ui := b.do("GET", "/ui/login", nil)
	if ui.status != http.StatusSeeOther {
		t.Fatalf("after SSO the sign-in page answers %d; want the signed-in redirect", ui.status)
	}
	if _, ok := b.cookies[oidcCookie]; ok {
		t.Error("the flow cookie outlived its callback")
	}
	if idp.Exchanges() != 1 {
		t.Errorf("%d code exchanges; want 1", idp.Exchanges())
	}
}

func TestOIDCSignInRefusals(t *testing.T) {
	nick := map[string]any{"email": "nick@example.com", "groups": []string{"idp-platform"}}
	for _, tc := range []struct {
		name   string
		claims map[string]any
		setup  func(*oidctest.Provider, *browser)
		tweak  func(url.Values)
		// dropFlow loses the flow cookie before the callback.
		dropFlow bool
		status   int
		msg      string
	}{
		{name: "state from another sign-in", claims: nick, tweak: func(q url.Values) { q.Set("state", "forged") }, status: 400, msg: "did not start in this browser"},
		{name: "no flow cookie", claims: nick, dropFlow: true, status: 400, msg: "expired or did not start"},
		{name: "provider error", claims: nick, tweak: func(q url.Values) { q.Set("error", "access_denied") }, status: 401, msg: "access_denied"},
		{name: "another nonce", claims: nick, setup: func(p *oidctest.Provider, _ *browser) {
			p.Tamper(func(c map[string]any) { c["nonce"] = "replayed" })
		}, status: 401, msg: "not issued for this sign-in"},
		{name: "expired ID token", claims: nick, setup: func(p *oidctest.Provider, _ *browser) {
			p.Tamper(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
		}, status: 401, msg: "not valid here"},
		{name: "another audience", claims: nick, setup: func(p *oidctest.Provider, _ *browser) {
			p.Tamper(func(c map[string]any) { c["aud"] = "someone-else" })
		}, status: 401, msg: "not valid here"},
		{name: "another issuer", claims: nick, setup: func(p *oidctest.Provider, _ *browser) {
			p.Tamper(func(c map[string]any) { c["iss"] = "https://evil.example.com" })
		}, status: 401, msg: "not valid here"},
		{name: "a key the provider does not publish", claims: nick, setup: func(p *oidctest.Provider, _ *browser) {
			p.SignWithUnpublishedKey(true)
		}, status: 401, msg: "not valid here"},
		{name: "a local account's name", claims: map[string]any{"email": "lena@example.com"}, status: 403, msg: "local account"},
		{name: "an unverified address", claims: map[string]any{"email": "nick@example.com", "email_verified": false}, status: 403, msg: "not verified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, idp := newSSOBrowser(t)
			idp.SignIn(tc.claims)
			if tc.setup != nil {
				tc.setup(idp, b)
			}
			tweak := tc.tweak
			if tc.dropFlow {
				tweak = func(url.Values) { delete(b.cookies, oidcCookie) }
			}
			p := b.ssoSignIn(tweak)
			if p.status != tc.status || !strings.Contains(p.body, tc.msg) {
				t.Fatalf("callback: %d; want %d with %q\n%s", p.status, tc.status, tc.msg, p.body)
			}
			if p.cookie(sessionCookie) != nil || b.signedIn() {
				t.Error("a refused sign-in set a session")
			}
		})
	}
}

func TestOIDCSessionFollowsTheConfig(t *testing.T) {
	idp := oidctest.New(t, "gatehouse-ui", "idp-secret")
	yaml := strings.Replace(ssoGatewayConfig, "ISSUER", idp.URL, 1)
	key := []byte("0123456789abcdef0123456789abcdef")
	b := newBrowser(t, Options{Config: uiTestConfig(t, yaml), SessionKey: key})
	idp.SignIn(map[string]any{"email": "nick@example.com", "groups": []string{"idp-platform"}})
	if p := b.ssoSignIn(nil); p.status != http.StatusSeeOther {
		t.Fatalf("callback: %d\n%s", p.status, p.body)
	}
	// The same session on a gateway whose config made nick a local user
	// is no session: SSO never takes over a local account.
	local := strings.Replace(yaml, "users:\n", "users:\n  - {id: nick@example.com, email: nick@example.com, source: local, token: t-nick}\n", 1)
	other := newBrowser(t, Options{Config: uiTestConfig(t, local), SessionKey: key})
	other.cookies = b.cookies
	if other.signedIn() {
		t.Error("an SSO session took over a local account of the same name")
	}
	// And on one without single sign-on, neither.
	plain := newBrowser(t, Options{Config: uiTestConfig(t, uiConfig), SessionKey: key})
	plain.cookies = b.cookies
	if plain.signedIn() {
		t.Error("an SSO session outlived the oidc block")
	}
	same := newBrowser(t, Options{Config: uiTestConfig(t, yaml), SessionKey: key})
	same.cookies = b.cookies
	if !same.signedIn() {
		t.Error("the SSO session is not accepted by a replica with the same config and key")
	}
}

func TestOIDCBearerIDToken(t *testing.T) {
	b, idp := newSSOBrowser(t)
	get := func(token string) int {
		req, _ := http.NewRequest("GET", b.url+"/api/v1/workspaces", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := idp.IDToken(t, map[string]any{"email": "nick@example.com", "groups": []string{"idp-platform"}}, "")
	if got := get(good); got != http.StatusOK {
		t.Errorf("API with an ID token: %d; want 200", got)
	}
	idp.Tamper(func(c map[string]any) { c["aud"] = "other-client" })
	if got := get(idp.IDToken(t, map[string]any{"email": "nick@example.com"}, "")); got != http.StatusUnauthorized {
		t.Errorf("API with an ID token for another client: %d; want 401", got)
	}
	idp.Tamper(nil)
	if got := get(idp.IDToken(t, map[string]any{"email": "lena@example.com"}, "")); got != http.StatusForbidden {
		t.Errorf("API with an ID token naming a local account: %d; want 403", got)
	}
	if got := get("t-alice"); got != http.StatusOK {
		t.Errorf("API with a static token: %d; want 200", got)
	}
}
