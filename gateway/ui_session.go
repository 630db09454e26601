package gateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
)

// Web UI sessions are stateless: the cookie carries who signed in, how and
// until when, signed with HMAC-SHA256 under the gateway's session key, so
// any replica with the same key accepts it. The user is looked up in the
// config on every request: a user removed from the config is signed out,
// and their groups and roles are always the config's current ones.
const (
	sessionCookie = "gatehouse_session"
	flashCookie   = "gatehouse_flash"
	csrfCookie    = "gatehouse_csrf"
	csrfField     = "_csrf"
	// SessionTTL is how long a web UI sign-in lasts.
	SessionTTL = 12 * time.Hour
	// sessionVersion is the layout of the session payload; another
	// version is not a session.
	sessionVersion = 1
)

// Ways of signing in, recorded in the session.
const (
	signInToken = "token"
	signInDev   = "dev"
)

// session is the payload of the session cookie.
type session struct {
	Version int             `json:"v"`
	User    approval.UserID `json:"u"`
	// Method is how the user signed in: "token", "dev" (the dev picker;
	// valid only on a dev gateway) and "oidc" (single sign-on).
	Method string `json:"m"`
	// Token fingerprints the user's token digest at sign-in, so changing a
	// user's token in the config signs out the sessions it opened.
	Token string `json:"t,omitempty"`
	// SSO is the identity provider's word, for method "oidc".
	SSO      *ssoSession `json:"sso,omitempty"`
	IssuedAt int64       `json:"iat"`
	Expires  int64       `json:"exp"`
}

// keys derives the UI's keys from the configured session key (or a random
// one): one for sessions, one for flash messages, so a value signed for one
// purpose is never accepted for the other.
func uiKeys(base []byte) (sessionKey, flashKey []byte) {
	if len(base) == 0 {
		base = make([]byte, 32)
		if _, err := rand.Read(base); err != nil {
			panic("gateway: no randomness for the session key: " + err.Error())
		}
	}
	derive := func(purpose string) []byte {
		m := hmac.New(sha256.New, base)
		m.Write([]byte("gatehouse-ui\x00" + purpose))
		return m.Sum(nil)
	}
	return derive("session"), derive("flash")
}

// sign returns payload.signature, both base64url.
func sign(key, payload []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write(payload)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verify returns the payload of a value made by sign with key.
func verify(key []byte, value string) ([]byte, bool) {
	p, sig, ok := strings.Cut(value, ".")
	if !ok {
		return nil, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return nil, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return nil, false
	}
	m := hmac.New(sha256.New, key)
	m.Write(payload)
	if !hmac.Equal(got, m.Sum(nil)) {
		return nil, false
	}
	return payload, true
}

// tokenPrint fingerprints a user's token digest for their session.
func (u *webUI) tokenPrint(user config.User) string {
	if user.TokenSHA256 == "" {
		return ""
	}
	m := hmac.New(sha256.New, u.sessionKey)
	m.Write([]byte("token\x00" + user.TokenSHA256))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:12])
}

// cookie returns a cookie of the UI's with its security attributes:
// HttpOnly, SameSite, and Secure except on a dev gateway.
func (u *webUI) cookie(name, value string, path string, maxAge time.Duration, sameSite http.SameSite) *http.Cookie {
	c := &http.Cookie{
		Name: name, Value: value, Path: path, HttpOnly: true, Secure: !u.s.Dev, SameSite: sameSite,
	}
	switch {
	case maxAge < 0:
		c.MaxAge = -1
		c.Expires = time.Unix(1, 0)
	case maxAge > 0:
		c.MaxAge = int(maxAge / time.Second)
		c.Expires = time.Now().Add(maxAge)
	}
	return c
}

// startSession signs user in: it sets the session cookie and sends the
// browser on to next. Every way of signing in (a token, the dev picker,
// OIDC later) ends here with a config user.
func (u *webUI) startSession(c echo.Context, user config.User, method, next string) error {
	return u.writeSession(c, session{User: user.ID, Method: method, Token: u.tokenPrint(user)}, next)
}

// startSSOSession signs in an SSO user as single sign-on resolved them.
func (u *webUI) startSSOSession(c echo.Context, sso ssoSession, next string) error {
	return u.writeSession(c, session{User: approval.UserID(sso.Name), Method: signInOIDC, SSO: &sso}, next)
}

// writeSession sets the session cookie for sess, issued now, and sends the
// browser on to next.
func (u *webUI) writeSession(c echo.Context, sess session, next string) error {
	now := time.Now()
	sess.Version, sess.IssuedAt, sess.Expires = sessionVersion, now.Unix(), now.Add(SessionTTL).Unix()
	payload, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	c.SetCookie(u.cookie(sessionCookie, sign(u.sessionKey, payload), "/", SessionTTL, http.SameSiteLaxMode))
	return c.Redirect(http.StatusSeeOther, safeNext(next))
}

// currentUser resolves the session cookie to a config user, if it is a
// session this gateway signed that has not expired, for a user still in the
// config, opened a way this gateway still accepts.
func (u *webUI) currentUser(c echo.Context) (config.User, bool) {
	ck, err := c.Cookie(sessionCookie)
	if err != nil {
		return config.User{}, false
	}
	payload, ok := verify(u.sessionKey, ck.Value)
	if !ok {
		return config.User{}, false
	}
	var sess session
	if err := json.Unmarshal(payload, &sess); err != nil || sess.Version != sessionVersion {
		return config.User{}, false
	}
	if time.Now().Unix() >= sess.Expires {
		return config.User{}, false
	}
	if sess.Method == signInOIDC {
		// Resolved again from the provider's word under the current
		// config: a mapping removed, or a config user made local, takes
		// effect on the next request.
		if sess.SSO == nil || u.s.Config.OIDC == nil {
			return config.User{}, false
		}
		user, err := u.s.Config.ResolveSSO(sess.SSO.claims(u.s.Config.OIDC))
		if err != nil || user.ID != sess.User {
			return config.User{}, false
		}
		return user, true
	}
	user, ok := u.s.Config.User(sess.User)
	if !ok {
		return config.User{}, false
	}
	switch sess.Method {
	case signInToken:
		if sess.Token == "" || !hmac.Equal([]byte(sess.Token), []byte(u.tokenPrint(user))) {
			return config.User{}, false
		}
		// A session opened with a token ends when the token expires:
		// otherwise signing in just before would stretch the token's
		// life by a whole session.
		if !user.TokenExpires.IsZero() && !time.Now().Before(user.TokenExpires) {
			return config.User{}, false
		}
	case signInDev:
		if !u.s.Dev {
			return config.User{}, false
		}
	default:
		return config.User{}, false
	}
	return user, true
}

// requireSession lets signed-in users through with their user set as the
// API's authentication would; others are sent to the sign-in page (a page)
// or answered 401 (the live endpoint, which scripts call).
func (u *webUI) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		user, ok := u.currentUser(c)
		if !ok {
			if c.Request().Method == http.MethodGet && !strings.HasSuffix(c.Path(), "/live") {
				return c.Redirect(http.StatusSeeOther, "/ui/login?next="+url.QueryEscape(c.Request().URL.RequestURI()))
			}
			return echo.NewHTTPError(http.StatusUnauthorized, "you are signed out: sign in again")
		}
		c.Set(userKey, user)
		return next(c)
	}
}

// errSignIn is a sign-in refused, in words for the sign-in page.
var errSignIn = errors.New("that token does not belong to any user")

// signInWithToken is the token sign-in: the token a config user has
// (token: or token_sha256:) names them. It is one of the functions that
// turn a request into a config user; OIDC will be another.
func (u *webUI) signInWithToken(c echo.Context) (config.User, error) {
	token := strings.TrimSpace(c.FormValue("token"))
	if token == "" {
		return config.User{}, errors.New("enter your token")
	}
	user, err := u.s.Config.AuthenticateAt(token, time.Now())
	switch {
	case errors.Is(err, config.ErrTokenExpired):
		return config.User{}, errors.New("that token has expired: ask for a new one")
	case err != nil:
		return config.User{}, errSignIn
	}
	return user, nil
}

// signInAsDev is the dev picker: on a dev gateway only, any config user,
// without a token.
func (u *webUI) signInAsDev(c echo.Context) (config.User, error) {
	if !u.s.Dev {
		return config.User{}, errors.New("the user picker is only available in gatehouse dev")
	}
	user, ok := u.s.Config.User(approval.UserID(c.FormValue("user")))
	if !ok {
		return config.User{}, errors.New("no such user")
	}
	return user, nil
}

// safeNext keeps a post-sign-in redirect on the UI: anything that is not a
// plain path under /ui/ goes to the inbox.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") ||
		strings.HasPrefix(next, "/ui/login") {
		return "/ui/"
	}
	return next
}

// flash is a one-time message shown on the page a form redirects to.
type flash struct {
	Kind    string `json:"k"` // "ok" or "error"
	Message string `json:"m"`
}

// setFlash leaves a message for the next page, signed so nobody else can
// put words on it.
func (u *webUI) setFlash(c echo.Context, kind, msg string) {
	payload, err := json.Marshal(flash{Kind: kind, Message: approval.TruncateUTF8(msg, 1024)})
	if err != nil {
		return
	}
	c.SetCookie(u.cookie(flashCookie, sign(u.flashKey, payload), "/ui/", time.Minute, http.SameSiteLaxMode))
}

// takeFlash returns the message left for this page, and clears it.
func (u *webUI) takeFlash(c echo.Context) *flash {
	ck, err := c.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	c.SetCookie(u.cookie(flashCookie, "", "/ui/", -1, http.SameSiteLaxMode))
	payload, ok := verify(u.flashKey, ck.Value)
	if !ok {
		return nil
	}
	var f flash
	if json.Unmarshal(payload, &f) != nil || f.Message == "" {
		return nil
	}
	return &f
}
