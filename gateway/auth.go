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

// authenticate resolves the bearer token to a configured user, or answers
// 401 before anything else is looked at.
func (s *server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		scheme, token, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return echo.NewHTTPError(http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
		}
		user, err := s.Config.AuthenticateAt(strings.TrimSpace(token), time.Now())
		switch {
		case errors.Is(err, config.ErrTokenExpired):
			// Its owner should rotate it, not hunt for a typo.
			return echo.NewHTTPError(http.StatusUnauthorized, "token expired")
		case err != nil:
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
