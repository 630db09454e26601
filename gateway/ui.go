package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
)

// The web UI is server-rendered: html/template pages, one stylesheet and
// one small script, all embedded in the binary and served by the gateway.
//
//go:embed web/templates/*.html web/static/*
var webFS embed.FS

// webUI is the approvers' web UI: pages over the same domain checks and the
// same decision path as the REST API.
type webUI struct {
	s          *server
	sessionKey []byte
	flashKey   []byte
	pages      map[string]*template.Template
	csrf       echo.MiddlewareFunc
	static     http.Handler
	// assetVersion is a digest of the static files, appended to their
	// URLs so a new build is never served a stale cached asset.
	assetVersion string
}

// The pages; each is parsed with layout.html and partials.html.
var uiPages = []string{"login", "inbox", "run", "error"}

func (s *server) newUI() *webUI {
	u := &webUI{s: s, pages: map[string]*template.Template{}}
	u.sessionKey, u.flashKey = uiKeys(s.SessionKey)
	static, err := fs.Sub(webFS, "web/static")
	if err != nil {
		panic(err)
	}
	u.assetVersion = digestFS(static)
	files := http.FileServer(http.FS(static))
	u.static = http.StripPrefix("/ui/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
	for _, name := range uiPages {
		t := template.New(name).Funcs(u.funcs())
		u.pages[name] = template.Must(t.ParseFS(webFS, "web/templates/layout.html", "web/templates/partials.html", "web/templates/"+name+".html"))
	}
	u.csrf = middleware.CSRFWithConfig(middleware.CSRFConfig{
		// A browser that says the request came from this very origin
		// (Sec-Fetch-Site: same-origin) is let through by Echo; anything
		// else must carry the form's token, which matches a cookie no
		// other site can read or set: cross-site posts fail either way.
		TokenLookup:    "form:" + csrfField,
		CookieName:     csrfCookie,
		CookiePath:     "/ui/",
		CookieMaxAge:   int(SessionTTL.Seconds()),
		CookieHTTPOnly: true,
		CookieSecure:   !s.Dev,
		CookieSameSite: http.SameSiteStrictMode,
		ErrorHandler:   func(error, echo.Context) error { return errCSRF },
		AllowSecFetchSiteFunc: func(c echo.Context) (bool, error) {
			if c.Request().Header.Get(echo.HeaderSecFetchSite) == "same-site" {
				return false, nil // a sibling host: its token decides
			}
			return false, errCSRF
		},
	})
	return u
}

// errCSRF refuses a form post that did not come from a Gatehouse page.
var errCSRF = echo.NewHTTPError(http.StatusForbidden,
	"This form did not come from a Gatehouse page (its CSRF token is missing or invalid, or another site sent it), so nothing was done. Go back, reload the page and try again.")

// digestFS is a short digest of every file in fsys.
func digestFS(fsys fs.FS) string {
	h := sha256.New()
	_ = fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(data))
		h.Write(data)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// uiActions are the decisions the run page offers, by their path segment.
var uiActions = []struct {
	Path string
	Kind approval.DecisionKind
}{
	{"approve", approval.DecisionApprove},
	{"reject", approval.DecisionReject},
	{"request-changes", approval.DecisionRequestChanges},
	{"revoke", approval.DecisionRevoke},
	{"cancel", approval.DecisionCancel},
	{"bypass", approval.DecisionBypass},
}

// register adds the UI's routes. Middleware is attached per route, as for
// the API, so wrong methods stay 405s.
func (u *webUI) register(e *echo.Echo) {
	toUI := func(c echo.Context) error { return c.Redirect(http.StatusFound, "/ui/") }
	e.GET("/", toUI)
	e.GET("/ui", toUI)
	e.GET("/ui/static/*", echo.WrapHandler(u.static))

	page := func(method, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
		e.Add(method, path, h, append([]echo.MiddlewareFunc{u.pageErrors, u.headers, u.csrf}, m...)...)
	}
	page(http.MethodGet, "/ui/login", u.loginPage)
	page(http.MethodPost, "/ui/login", u.login)
	page(http.MethodPost, "/ui/logout", u.logout)
	page(http.MethodGet, "/ui/oidc/login", u.oidcLogin)
	page(http.MethodGet, "/ui/oidc/callback", u.oidcCallback)
	page(http.MethodGet, "/ui/", u.inbox, u.requireSession)
	page(http.MethodGet, "/ui/runs", u.runList, u.requireSession)
	page(http.MethodGet, "/ui/workspaces/:ws/runs/:id", u.runPage, u.requireSession, u.s.requireWorkspace)
	for _, a := range uiActions {
		page(http.MethodPost, "/ui/workspaces/:ws/runs/:id/"+a.Path, u.decideForm(a.Kind), u.requireSession, u.s.requireWorkspace)
	}
	// The live endpoint answers scripts: its errors are the API's JSON.
	e.GET("/ui/workspaces/:ws/runs/:id/live", u.live, u.headers, u.requireSession, u.s.requireWorkspace)
	e.Any("/ui/*", func(echo.Context) error {
		return echo.NewHTTPError(http.StatusNotFound, "There is no such page.")
	}, u.pageErrors, u.headers)
}

// headers sets what every UI answer carries: a strict content security
// policy (no inline script or style, nothing from elsewhere), no framing,
// no caching of pages, no sniffing.
func (u *webUI) headers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		return next(c)
	}
}

// pageErrors renders the errors of pages as a page that says what went
// wrong in words: the domain's message for its errors, Echo's for its own,
// and for anything else only that something failed inside (logged).
func (u *webUI) pageErrors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		err := next(c)
		if err == nil || c.Response().Committed {
			return err
		}
		status, msg := u.describe(c, err)
		return u.render(c, status, "error", "Error", errorPage{Status: status, StatusText: http.StatusText(status), Message: msg})
	}
}

// describe turns an error into a status and words for people.
func (u *webUI) describe(c echo.Context, err error) (int, string) {
	var de *approval.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &de):
		status := statusOf[de.Code]
		if status == 0 {
			status = http.StatusInternalServerError
		}
		return status, de.Message
	case errors.As(err, &he):
		if m, ok := he.Message.(string); ok {
			return he.Code, m
		}
		return he.Code, http.StatusText(he.Code)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return http.StatusServiceUnavailable, "Temporal did not answer in time. Try again in a moment."
	}
	u.s.Logger.Error("ui request failed", zap.String("method", c.Request().Method),
		zap.String("uri", c.Request().RequestURI), zap.Error(err))
	return http.StatusInternalServerError, "Something went wrong inside Gatehouse; it has been logged. Try again in a moment."
}

type errorPage struct {
	Status     int
	StatusText string
	Message    string
}

// pageData is what the layout renders around every page.
type pageData struct {
	Title string
	User  *config.User
	CSRF  string
	Flash *flash
	Dev   bool
	// Nav names the navigation entry of the page ("inbox", "runs").
	Nav  string
	Page any
}

// render executes a page in the layout.
func (u *webUI) render(c echo.Context, status int, page, title string, data any) error {
	d := pageData{Title: title, CSRF: csrfToken(c), Dev: u.s.Dev, Page: data}
	if user, ok := c.Get(userKey).(config.User); ok {
		d.User = &user
	}
	if page != "error" && page != "login" {
		d.Flash = u.takeFlash(c)
	}
	switch page {
	case "inbox":
		d.Nav = "inbox"
		if p, ok := data.(inboxPage); ok && !p.ShowWaiting {
			d.Nav = "runs"
		}
	}
	var buf bytes.Buffer
	if err := u.pages[page].ExecuteTemplate(&buf, "layout", d); err != nil {
		u.s.Logger.Error("render page", zap.String("page", page), zap.Error(err))
		return c.String(http.StatusInternalServerError, "internal error: the page could not be rendered")
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// csrfToken is the token the page's forms carry.
func csrfToken(c echo.Context) string {
	t, _ := c.Get("csrf").(string)
	return t
}

// renderRegion executes one named template of a page on its own.
func (u *webUI) renderRegion(page, name string, data any) (string, error) {
	var buf bytes.Buffer
	if err := u.pages[page].ExecuteTemplate(&buf, name, data); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// asset is the URL of a static file, with the build's digest.
func (u *webUI) asset(name string) string {
	return "/ui/static/" + name + "?v=" + u.assetVersion
}

func statusWords(s approval.Status) string {
	return strings.ReplaceAll(string(s), "_", " ")
}
