package gateway

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/gatehouse-dev/gatehouse/config"
)

// loginPage is the sign-in form: a token field and, on a dev gateway, a
// button per config user.
type loginPage struct {
	Next  string
	Error string
	// Users are the dev picker's users; nil outside dev.
	Users []config.User
	// SSO offers single sign-on (the config has an oidc block).
	SSO bool
}

func (u *webUI) loginPage(c echo.Context) error {
	if _, ok := u.currentUser(c); ok {
		return c.Redirect(http.StatusSeeOther, safeNext(c.QueryParam("next")))
	}
	return u.renderLogin(c, http.StatusOK, "")
}

func (u *webUI) renderLogin(c echo.Context, status int, msg string) error {
	p := loginPage{Next: safeNext(c.QueryParam("next")), Error: msg}
	if c.Request().Method == http.MethodPost {
		p.Next = safeNext(c.FormValue("next"))
	}
	if u.s.Dev {
		p.Users = u.s.Config.Users
	}
	p.SSO = u.s.sso != nil
	return u.render(c, status, "login", "Sign in", p)
}

// login signs in with a token or, in dev, as a picked user. A refused
// sign-in shows the sign-in page again with the reason and sets no cookie.
func (u *webUI) login(c echo.Context) error {
	signIn, method := u.signInWithToken, signInToken
	if c.FormValue("user") != "" {
		signIn, method = u.signInAsDev, signInDev
	}
	if method == signInToken {
		if err := u.s.throttled(c); err != nil {
			return u.renderThrottled(c, err)
		}
	}
	user, err := signIn(c)
	if err != nil {
		if method == signInToken {
			u.s.authFailed(c)
		}
		return u.renderLogin(c, http.StatusUnauthorized, err.Error())
	}
	return u.startSession(c, user, method, c.FormValue("next"))
}

// logout ends the session in this browser. Sessions are stateless: a copy
// of the cookie stays valid until it expires, unless the user's token
// changes, the user leaves the config or the session key is rotated.
func (u *webUI) logout(c echo.Context) error {
	c.SetCookie(u.cookie(sessionCookie, "", "/", -1, http.SameSiteLaxMode))
	return c.Redirect(http.StatusSeeOther, "/ui/login")
}
