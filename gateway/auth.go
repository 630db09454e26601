package gateway

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
)

// Context keys. Echo's context store is per request.
const (
	userKey      = "gatehouse.user"
	workspaceKey = "gatehouse.workspace"
)

// authenticate resolves the bearer token to a configured user (or, where
// single sign-on is set up, an ID token of the provider to its SSO user), or
// answers 401 before anything else is looked at. An address that failed too
// often is answered 429 whatever it sends (ratelimit.go).
func (s *server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := s.throttled(c); err != nil {
			return err
		}
		scheme, token, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return echo.NewHTTPError(http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
		}
		user, err := s.Config.AuthenticateAt(token, time.Now())
		if errors.Is(err, config.ErrTokenInvalid) && s.sso != nil && looksLikeJWT(token) {
			user, err = s.bearerIDToken(c.Request().Context(), token)
			if err != nil {
				s.authFailed(c)
				if errors.Is(err, config.ErrSSORefused) {
					return echo.NewHTTPError(http.StatusForbidden, err.Error())
				}
				return echo.NewHTTPError(http.StatusUnauthorized, "invalid token")
			}
		}
		switch {
		case errors.Is(err, config.ErrTokenExpired):
			s.authFailed(c)
			// Its owner should rotate it, not hunt for a typo.
			return echo.NewHTTPError(http.StatusUnauthorized, "token expired")
		case err != nil:
			s.authFailed(c)
			return echo.NewHTTPError(http.StatusUnauthorized, "invalid token")
		}
		c.Set(userKey, user)
		return next(c)
	}
}

// requireWorkspace answers 404 for workspaces the config does not have.
func (s *server) requireWorkspace(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ws, ok := s.Config.Workspace(c.Param("ws"))
		if !ok {
			return approval.Errorf(approval.CodeNotFound, "workspace %q not found", c.Param("ws"))
		}
		c.Set(workspaceKey, ws)
		return next(c)
	}
}

// userOf returns the authenticated user's identity; the zero identity on
// unauthenticated routes.
func userOf(c echo.Context) approval.Identity {
	if u, ok := c.Get(userKey).(config.User); ok {
		return u.Identity
	}
	return approval.Identity{}
}

func workspaceOf(c echo.Context) config.Workspace {
	ws, _ := c.Get(workspaceKey).(config.Workspace)
	return ws
}
