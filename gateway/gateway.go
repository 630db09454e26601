// Package gateway is Gatehouse's HTTP front: a JSON REST API over Echo that
// turns people's requests into starter calls. Handlers are thin: they
// authenticate, decode, call starter, and render; the decisions themselves
// are made by package approval inside the run workflow.
package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.temporal.io/sdk/converter"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/activities/audit"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/metrics"
	"github.com/gatehouse-dev/gatehouse/plan"
	"github.com/gatehouse-dev/gatehouse/starter"
	"github.com/gatehouse-dev/gatehouse/tracing"
)

// DefaultBodyLimit bounds request bodies: 16 MiB, 16,777,216 bytes (Echo
// reads "M" as 2^20). Plans of large workspaces run to a few megabytes;
// anything beyond is refused with a 413, whether the body declares its
// length or is sent chunked.
const DefaultBodyLimit = "16M"

// Options configures the gateway.
type Options struct {
	Config *config.Config
	Runs   *starter.Client
	Plans  *plan.Store
	Logger *zap.Logger
	// Health reports whether Temporal is reachable, for /healthz.
	Health func(ctx context.Context) error
	// BodyLimit is an Echo size such as "16M"; DefaultBodyLimit when empty.
	BodyLimit string
	// ApprovalKey signs the approvals of approved runs; nil disables them.
	ApprovalKey ed25519.PrivateKey
	// Metrics records HTTP latency by route; nil records nothing. The
	// decisions are counted by Runs (starter), the one path they all take.
	Metrics *metrics.Metrics
	// Codec is the processes' payload codec (compression, under
	// encryption when keys are set), served at /codec for the Temporal Web
	// UI; nil serves none.
	Codec converter.PayloadCodec
	// Audit is the audit trail (the worker writes it): the audit API, the
	// run list past Temporal's visibility and the run page read it. Nil when
	// the process has no database.
	Audit *audit.Store
	// OIDCClient is the HTTP client that reaches the identity provider
	// of the config's oidc block; nil uses one with a 10s timeout.
	OIDCClient *http.Client
	// AuthFailureBurst failed authentications are allowed per client
	// address at once, refilled over AuthFailureWindow; beyond, the
	// address is answered 429 (ratelimit.go). Zero means
	// DefaultAuthFailureBurst and DefaultAuthFailureWindow.
	AuthFailureBurst  int
	AuthFailureWindow time.Duration
	// SessionKey signs the web UI's session cookies (HMAC-SHA256). Every
	// replica of the gateway needs the same key so they share sessions;
	// nil or empty generates a random key per process, so sessions end
	// when the process does (fine for gatehouse dev).
	SessionKey []byte
	// Dev marks a development gateway (gatehouse dev): the web UI's
	// sign-in page offers a picker of the config's users, and its cookies
	// are not marked Secure, so plain http on localhost works.
	Dev bool
	// Namespace is the Temporal namespace of the runs, for links into the
	// Temporal Web UI (config temporal_ui_url); "default" when empty.
	Namespace string
	// Tracing makes a span per request (gateway/tracing.go); nil or off
	// makes none.
	Tracing *tracing.Provider
}

// server holds the handlers' dependencies.
type server struct {
	Options
	plans planCache
	// sso is nil unless the config has an oidc block.
	sso          *ssoLogin
	authFailures *failureLimiter
}

// New returns the gateway's HTTP handler.
func New(opts Options) http.Handler {
	if opts.BodyLimit == "" {
		opts.BodyLimit = DefaultBodyLimit
	}
	s := &server{Options: opts,
		sso:          newSSOLogin(opts.Config.OIDC, opts.OIDCClient),
		authFailures: newFailureLimiter(opts.AuthFailureBurst, opts.AuthFailureWindow, maxFailureEntries),
	}
	ui := s.newUI()
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	if opts.Tracing.Enabled() {
		e.Use(s.traceRequests)
	}
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogMethod: true, LogURI: true, LogStatus: true, LogLatency: true, LogError: true,
		// Render the error before logging, so the line has the status
		// that was sent (a domain 403 is not logged as a 500).
		HandleError: true,
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			s.Logger.Info("http request", append([]zap.Field{
				zap.String("method", v.Method), zap.String("uri", v.URI), zap.Int("status", v.Status),
				zap.Duration("latency", v.Latency), zap.String("user", string(userOf(c).ID))},
				traceFields(c.Request().Context())...)...)
			// By route (the pattern, never the path), so runs and users do
			// not become label values.
			s.Metrics.HTTP(c.Path(), v.Method, v.Status, v.Latency)
			return nil
		},
	}))
	e.Use(middleware.Recover())
	e.Use(middleware.BodyLimit(opts.BodyLimit))

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	// Middleware is attached per route, not per group: Echo answers a group
	// with middleware for every method, which would turn 405s into 404s.
	ws := func(method, path string, h echo.HandlerFunc) {
		e.Add(method, "/api/v1/workspaces/:ws"+path, h, s.authenticate, s.requireWorkspace)
	}
	ws(http.MethodPost, "/runs", s.createRun)
	ws(http.MethodGet, "/runs", s.listRuns)
	ws(http.MethodGet, "/runs/:id", s.getRun)
	ws(http.MethodGet, "/runs/:id/approvals", s.getDecisions)
	ws(http.MethodGet, "/runs/:id/approval-requirements", s.getRequirements)
	ws(http.MethodPost, "/runs/:id/approve", s.decide(approval.DecisionApprove))
	ws(http.MethodPost, "/runs/:id/reject", s.decide(approval.DecisionReject))
	ws(http.MethodPost, "/runs/:id/cancel", s.decide(approval.DecisionCancel))
	ws(http.MethodPost, "/runs/:id/revoke", s.decide(approval.DecisionRevoke))
	ws(http.MethodPost, "/runs/:id/request-changes", s.decide(approval.DecisionRequestChanges))
	ws(http.MethodPost, "/runs/:id/bypass", s.decide(approval.DecisionBypass))
	ws(http.MethodPost, "/runs/:id/renotify", s.decide(approval.DecisionRenotify))
	ws(http.MethodPost, "/runs/:id/plan", s.revisePlan)
	ws(http.MethodGet, "/runs/:id/logs", s.getLogs)
	ws(http.MethodGet, "/runs/:id/approval", s.getApproval)
	e.GET("/api/v1/workspaces", s.listWorkspaces, s.authenticate)
	e.GET("/api/v1/audit", s.listAudit, s.authenticate)
	e.GET("/api/v1/audit/export", s.exportAudit, s.authenticate)
	e.GET("/api/v1/approval-key", s.getApprovalKey)
	// Webhooks authenticate by their signature, not by a bearer token.
	e.POST("/api/v1/hooks/:ws", s.startFromHook)
	e.POST("/api/v1/github/webhook", s.gitHubWebhook)
	e.POST("/api/v1/slack/interactions", s.slackInteraction)
	e.POST("/api/v1/external/servicenow/:ws/callback", s.serviceNowCallback)
	e.POST("/api/v1/external/jira/:ws/callback", s.jiraCallback)
	e.POST("/api/v1/external/webhook/callback/:token", s.webhookCallback)
	s.registerCodec(e, ui)
	ui.register(e)
	return e
}

// healthz says the process is up and serving: what a liveness probe asks.
// It reaches nothing else, so a Temporal outage does not get healthy
// gateways restarted.
func (s *server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// readyz says whether the gateway can do its work: Temporal answers, and so
// does the audit trail's database where it has one. A readiness probe
// takes it out of rotation until both do.
func (s *server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 3*time.Second)
	defer cancel()
	out, ready := map[string]string{"status": "ready", "temporal": "reachable", "database": "none"}, true
	if err := s.Health(ctx); err != nil {
		s.Logger.Warn("readiness: temporal unreachable", zap.Error(err))
		out["temporal"], ready = "unreachable", false
	}
	if s.Audit != nil {
		out["database"] = "reachable"
		if err := s.Audit.Ping(ctx); err != nil {
			s.Logger.Warn("readiness: audit database unreachable", zap.Error(err))
			out["database"], ready = "unreachable", false
		}
	}
	if !ready {
		out["status"] = "unavailable"
		return c.JSON(http.StatusServiceUnavailable, out)
	}
	return c.JSON(http.StatusOK, out)
}

// statusOf is the one table from domain error codes to HTTP statuses.
var statusOf = map[approval.Code]int{
	approval.CodeInvalid:       http.StatusBadRequest,
	approval.CodeForbidden:     http.StatusForbidden,
	approval.CodeNotFound:      http.StatusNotFound,
	approval.CodeConflict:      http.StatusConflict,
	approval.CodeRateLimited:   http.StatusTooManyRequests,
	approval.CodeUnprocessable: http.StatusUnprocessableEntity,
}

// handleError renders every error, Echo's own included, as {"error": "..."}.
// Domain errors keep their message; anything else is logged and the client
// is told only that something went wrong inside.
func (s *server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := http.StatusInternalServerError, "internal error"
	var de *approval.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &de):
		status, msg = statusOf[de.Code], de.Message
		if status == 0 {
			status = http.StatusInternalServerError
		}
		if de.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(de.RetryAfter.Seconds()))))
		}
	case errors.As(err, &he):
		status = he.Code
		if m, ok := he.Message.(string); ok {
			msg = m
		} else {
			msg = http.StatusText(he.Code)
		}
	case errors.Is(err, starter.ErrNoWorker):
		status, msg = http.StatusServiceUnavailable, "no Gatehouse worker is polling this run's task queue: start one, or try again in a moment"
		c.Response().Header().Set("Retry-After", "5")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		status, msg = http.StatusServiceUnavailable, "temporal did not answer in time"
	}
	if status >= 500 {
		s.Logger.Error("request failed", zap.String("method", c.Request().Method),
			zap.String("uri", c.Request().RequestURI), zap.Error(err))
	}
	if err := c.JSON(status, map[string]string{"error": msg}); err != nil {
		s.Logger.Warn("write error response", zap.Error(err))
	}
}
