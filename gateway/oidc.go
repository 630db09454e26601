package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/config"
)

// Single sign-on is OpenID Connect's authorization code flow with PKCE:
// /ui/oidc/login sends the browser to the identity provider with a fresh
// state, nonce and code challenge, which it also keeps in a short-lived
// signed cookie; /ui/oidc/callback checks the state, exchanges the code,
// verifies the ID token (signature, issuer, audience, expiry, nonce) and
// resolves its claims to an SSO user with config.ResolveSSO. The session
// then carries the provider's word (username, email, the provider groups
// the config maps), and every request resolves it again against the
// current config, as config users are looked up again.
const (
	oidcCookie     = "gatehouse_oidc"
	oidcCookiePath = "/ui/oidc/"
	// oidcFlowTTL is how long a sign-in may take at the provider.
	oidcFlowTTL = 10 * time.Minute
	signInOIDC  = "oidc"
	// oidcTimeout bounds each call to the provider.
	oidcTimeout = 10 * time.Second
)

// ssoLogin is the gateway's OpenID Connect client. The provider's
// discovery document is fetched on first use and kept once it was read,
// so a provider down when the gateway starts delays sign-ins, not the
// gateway.
type ssoLogin struct {
	cfg    *config.OIDC
	client *http.Client

	mu       sync.Mutex
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newSSOLogin(cfg *config.OIDC, client *http.Client) *ssoLogin {
	if cfg == nil {
		return nil
	}
	if client == nil {
		client = &http.Client{Timeout: oidcTimeout}
	}
	return &ssoLogin{cfg: cfg, client: client}
}

// discover returns the OAuth2 client and the ID token verifier, reading the
// provider's discovery document the first time.
func (l *ssoLogin) discover(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.oauth != nil {
		return l.oauth, l.verifier, nil
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, l.client), oidcTimeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, l.cfg.Issuer)
	if err != nil {
		return nil, nil, fmt.Errorf("oidc discovery at %s: %w", l.cfg.Issuer, err)
	}
	l.oauth = &oauth2.Config{
		ClientID: l.cfg.ClientID, ClientSecret: l.cfg.ClientSecret, RedirectURL: l.cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: l.cfg.Scopes,
	}
	// The verifier fetches the provider's keys (and refetches them when
	// they rotate) with the client NewProvider found in its context.
	l.verifier = p.Verifier(&oidc.Config{ClientID: l.cfg.ClientID})
	return l.oauth, l.verifier, nil
}

// verify checks a raw ID token and returns its claims.
func (l *ssoLogin) verify(ctx context.Context, raw string) (*oidc.IDToken, config.Claims, error) {
	_, verifier, err := l.discover(ctx)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, l.client), oidcTimeout)
	defer cancel()
	tok, err := verifier.Verify(ctx, raw)
	if err != nil {
		return nil, nil, err
	}
	var claims config.Claims
	if err := tok.Claims(&claims); err != nil {
		return nil, nil, err
	}
	return tok, claims, nil
}

// oidcFlow is the payload of the flow cookie: what the callback must find
// again.
type oidcFlow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"next,omitempty"`
	Expires  int64  `json:"exp"`
}

// ssoSession is what a session opened by single sign-on carries: the
// username and (verified) email the provider gave, and the provider groups
// the config mapped at sign-in. Unmapped groups are left out, which keeps
// the cookie small; a group mapped later counts from the next sign-in.
type ssoSession struct {
	Name   string   `json:"n"`
	Email  string   `json:"e,omitempty"`
	Groups []string `json:"g,omitempty"`
}

// claims are the session's claims as ResolveSSO reads them.
func (s ssoSession) claims(o *config.OIDC) config.Claims {
	c := config.Claims{}
	if s.Email != "" {
		c["email"] = s.Email
	}
	c[o.UsernameClaim] = s.Name
	c[o.GroupsClaim] = s.Groups
	return c
}

// randomString is n random bytes, base64url.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("gateway: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// oidcKey signs the flow cookie: derived from the session key for this
// purpose only.
func (u *webUI) oidcKey() []byte {
	m := hmac.New(sha256.New, u.sessionKey)
	m.Write([]byte("oidc-flow"))
	return m.Sum(nil)
}

// oidcLogin starts a sign-in at the identity provider.
func (u *webUI) oidcLogin(c echo.Context) error {
	sso := u.s.sso
	if sso == nil {
		return echo.NewHTTPError(http.StatusNotFound, "Single sign-on is not configured on this Gatehouse.")
	}
	oauth, _, err := sso.discover(c.Request().Context())
	if err != nil {
		u.s.Logger.Warn("oidc discovery failed", zap.Error(err))
		return u.renderLogin(c, http.StatusServiceUnavailable, "The identity provider did not answer. Try again in a moment, or sign in with your token.")
	}
	flow := oidcFlow{State: randomString(32), Nonce: randomString(32), Verifier: oauth2.GenerateVerifier(),
		Next: safeNext(c.QueryParam("next")), Expires: time.Now().Add(oidcFlowTTL).Unix()}
	payload, err := json.Marshal(flow)
	if err != nil {
		return err
	}
	// Lax: the provider sends the browser back with a top-level GET from
	// its own site, which Strict would strip the cookie from.
	c.SetCookie(u.cookie(oidcCookie, sign(u.oidcKey(), payload), oidcCookiePath, oidcFlowTTL, http.SameSiteLaxMode))
	return c.Redirect(http.StatusFound, oauth.AuthCodeURL(flow.State, oidc.Nonce(flow.Nonce), oauth2.S256ChallengeOption(flow.Verifier)))
}

// oidcCallback finishes a sign-in: every failure shows the sign-in page
// with the reason, sets no session, and counts against the client's
// address.
func (u *webUI) oidcCallback(c echo.Context) error {
	sso := u.s.sso
	if sso == nil {
		return echo.NewHTTPError(http.StatusNotFound, "Single sign-on is not configured on this Gatehouse.")
	}
	if err := u.s.throttled(c); err != nil {
		return u.renderThrottled(c, err)
	}
	// The flow cookie is good for one callback, whatever happens.
	c.SetCookie(u.cookie(oidcCookie, "", oidcCookiePath, -1, http.SameSiteLaxMode))
	fail := func(status int, msg string, err error) error {
		u.s.authFailed(c)
		u.s.Logger.Info("oidc sign-in refused", zap.String("reason", msg), zap.Error(err), zap.String("client", u.s.clientAddr(c)))
		return u.renderLogin(c, status, msg)
	}
	flow, ok := u.readFlow(c)
	if !ok {
		return fail(http.StatusBadRequest, "This sign-in expired or did not start on this Gatehouse. Sign in again.", nil)
	}
	if e := c.QueryParam("error"); e != "" {
		return fail(http.StatusUnauthorized, "The identity provider refused the sign-in ("+e+").", nil)
	}
	if st := c.QueryParam("state"); st == "" || !hmac.Equal([]byte(st), []byte(flow.State)) {
		return fail(http.StatusBadRequest, "This sign-in did not start in this browser. Sign in again.", nil)
	}
	code := c.QueryParam("code")
	if code == "" {
		return fail(http.StatusBadRequest, "The identity provider sent no authorization code. Sign in again.", nil)
	}
	ctx := c.Request().Context()
	oauth, _, err := sso.discover(ctx)
	if err != nil {
		u.s.Logger.Warn("oidc discovery failed", zap.Error(err))
		return u.renderLogin(c, http.StatusServiceUnavailable, "The identity provider did not answer. Try again in a moment.")
	}
	exCtx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, sso.client), oidcTimeout)
	defer cancel()
	tok, err := oauth.Exchange(exCtx, code, oauth2.VerifierOption(flow.Verifier))
	if err != nil {
		return fail(http.StatusUnauthorized, "The identity provider did not accept the sign-in. Sign in again.", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return fail(http.StatusUnauthorized, "The identity provider sent no ID token.", nil)
	}
	idTok, claims, err := sso.verify(ctx, raw)
	if err != nil {
		return fail(http.StatusUnauthorized, "The identity provider's ID token is not valid here.", err)
	}
	if !hmac.Equal([]byte(idTok.Nonce), []byte(flow.Nonce)) {
		return fail(http.StatusUnauthorized, "The ID token was not issued for this sign-in. Sign in again.", nil)
	}
	user, err := u.s.Config.ResolveSSO(claims)
	if err != nil {
		msg := "Single sign-on refused."
		if errors.Is(err, config.ErrSSORefused) {
			msg = strings.TrimPrefix(err.Error(), config.ErrSSORefused.Error()+": ")
		}
		return fail(http.StatusForbidden, msg, err)
	}
	email, _ := claims["email"].(string)
	if v, present := claims["email_verified"].(bool); present && !v {
		email = ""
	}
	return u.startSSOSession(c, ssoSession{Name: string(user.ID), Email: email, Groups: u.s.Config.MappedGroups(claims[u.s.Config.OIDC.GroupsClaim])}, flow.Next)
}

// readFlow returns the flow cookie's payload if this gateway signed it and
// it has not expired.
func (u *webUI) readFlow(c echo.Context) (oidcFlow, bool) {
	ck, err := c.Cookie(oidcCookie)
	if err != nil {
		return oidcFlow{}, false
	}
	payload, ok := verify(u.oidcKey(), ck.Value)
	if !ok {
		return oidcFlow{}, false
	}
	var f oidcFlow
	if json.Unmarshal(payload, &f) != nil || f.State == "" || f.Nonce == "" || f.Verifier == "" || time.Now().Unix() >= f.Expires {
		return oidcFlow{}, false
	}
	return f, true
}

// bearerIDToken resolves an ID token sent as a bearer token on the API:
// verified as at sign-in (but with no nonce to check), then resolved like
// a web UI sign-in.
func (s *server) bearerIDToken(ctx context.Context, raw string) (config.User, error) {
	_, claims, err := s.sso.verify(ctx, raw)
	if err != nil {
		return config.User{}, err
	}
	return s.Config.ResolveSSO(claims)
}

// looksLikeJWT tells an ID token from a static token: three base64url
// parts. Static tokens Gatehouse makes have no dots.
func looksLikeJWT(token string) bool {
	return strings.Count(token, ".") == 2 && len(token) > 20
}
