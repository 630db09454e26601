package gateway

import (
	"io"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	commonpb "go.temporal.io/api/common/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// registerCodec serves the payload codec to the Temporal Web UI (its
// "codec server" setting): POST /codec/decode and /codec/encode take and
// answer {"payloads": [...]} as Temporal's remote codec protocol has it.
// Only admins may call them: with their bearer token, or - what the Web UI
// sends when told to include credentials - the session cookie of
// Gatehouse's own web UI, whose site the Temporal Web UI shares. Only from
// the Web UI's origin (temporal_ui_url) may a browser read the answers.
func (s *server) registerCodec(e *echo.Echo, ui *webUI) {
	cors := middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins:     []string{origin(s.Config.TemporalUIURL)},
		AllowMethods:     []string{http.MethodPost, http.MethodOptions},
		AllowHeaders:     []string{echo.HeaderAuthorization, echo.HeaderContentType, "X-Namespace"},
		AllowCredentials: true,
	})
	for _, op := range []string{"encode", "decode"} {
		e.POST("/codec/"+op, s.codec(op), cors, s.bearerOrSession(ui), s.requireAdmin)
		// The browser's preflight carries no token.
		e.OPTIONS("/codec/"+op, func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, cors)
	}
}

// origin is a URL's scheme://host, what a browser sends as Origin; a
// placeholder no browser sends when there is no URL.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if raw == "" || err != nil || u.Host == "" {
		return "null-origin.invalid"
	}
	return u.Scheme + "://" + u.Host
}

// bearerOrSession authenticates a bearer token, or else the web UI's
// session cookie.
func (s *server) bearerOrSession(ui *webUI) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		bearer := s.authenticate(next)
		return func(c echo.Context) error {
			if c.Request().Header.Get(echo.HeaderAuthorization) != "" {
				return bearer(c)
			}
			user, ok := ui.currentUser(c)
			if !ok {
				return echo.NewHTTPError(http.StatusUnauthorized, "sign in to Gatehouse's web UI, or send Authorization: Bearer <token>")
			}
			c.Set(userKey, user)
			return next(c)
		}
	}
}

// requireAdmin lets only admins on: reading every run's payloads is an
// operator's power, not an approver's.
func (s *server) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !userOf(c).HasRole(approval.RoleAdmin) {
			return approval.Errorf(approval.CodeForbidden, "role: only admins may use the payload codec")
		}
		return next(c)
	}
}

// codec encodes or decodes the posted payloads with the deployment's codec:
// its keys, if payloads are encrypted, and compression.
func (s *server) codec(op string) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.Codec == nil {
			return approval.Errorf(approval.CodeNotFound, "codec: this gateway has no payload codec")
		}
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return approval.Errorf(approval.CodeInvalid, "body: %v", err)
		}
		var in commonpb.Payloads
		if err := protojson.Unmarshal(body, &in); err != nil {
			return approval.Errorf(approval.CodeInvalid, "body: want {\"payloads\": [...]} in Temporal's JSON: %v", err)
		}
		run := s.Codec.Decode
		if op == "encode" {
			run = s.Codec.Encode
		}
		out, err := run(in.GetPayloads())
		if err != nil {
			return approval.Errorf(approval.CodeUnprocessable, "codec: %v", err)
		}
		data, err := protojson.Marshal(&commonpb.Payloads{Payloads: out})
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, data)
	}
}
