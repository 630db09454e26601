package gateway

import (
	"context"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Attributes the gateway adds to its server spans. Runs and workspaces are
// attributes, never part of a span's name, so names stay few (one per
// route) and a trace backend can still find every request about a run.
const (
	WorkspaceKey = attribute.Key("gatehouse.workspace")
	RunIDKey     = attribute.Key("gatehouse.run_id")
)

// tracerName names the gateway's instrumentation scope.
const tracerName = "github.com/gatehouse-dev/gatehouse/gateway"

// traceRequests makes one server span per request, named by method and
// route pattern ("POST /api/v1/workspaces/:ws/runs"), continuing the
// caller's trace when the request carries a traceparent header. The span
// context is put in the request's context, which handlers pass on to
// starter, so the SDK's interceptor continues the trace into Temporal.
// It must run outside the request logger: that one renders errors, so the
// status seen here is the one sent.
func (s *server) traceRequests(next echo.HandlerFunc) echo.HandlerFunc {
	tracer := s.Tracing.Tracer(tracerName)
	prop := s.Tracing.Propagator
	return func(c echo.Context) error {
		req := c.Request()
		ctx := prop.Extract(req.Context(), propagation.HeaderCarrier(req.Header))
		route := c.Path()
		name := req.Method
		if route != "" {
			name += " " + route
		}
		scheme := "http"
		if req.TLS != nil {
			scheme = "https"
		}
		ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
			semconv.HTTPRequestMethodKey.String(req.Method),
			semconv.HTTPRoute(route),
			semconv.URLScheme(scheme),
			semconv.ServerAddress(req.Host),
			semconv.ClientAddress(c.RealIP()),
			semconv.UserAgentOriginal(req.UserAgent()),
		))
		defer span.End()
		// Only these two parameters, and never the raw path: others (a
		// callback's :token) are secrets.
		if ws := c.Param("ws"); ws != "" {
			span.SetAttributes(WorkspaceKey.String(ws))
		}
		if id := c.Param("id"); id != "" {
			span.SetAttributes(RunIDKey.String(id))
		}
		c.SetRequest(req.WithContext(ctx))
		err := next(c)
		status := c.Response().Status
		span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		if u := userOf(c).ID; u != "" {
			span.SetAttributes(semconv.EnduserID(string(u)))
		}
		// A 4xx is the client's mistake, not the server's (OpenTelemetry's
		// HTTP conventions): only 5xx mark the span as failed.
		if status >= http.StatusInternalServerError {
			span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
			span.SetStatus(codes.Error, http.StatusText(status))
			if err != nil {
				span.RecordError(err)
			}
		}
		return err
	}
}

// tagRun names the run a request created on its span, where the route has
// no run id to take it from.
func tagRun(c echo.Context, id string) {
	trace.SpanFromContext(c.Request().Context()).SetAttributes(RunIDKey.String(id))
}

// traceFields are the trace and span ids of ctx's span for a log line;
// none when the request is not traced.
func traceFields(ctx context.Context) []zap.Field {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	return []zap.Field{zap.String("trace_id", sc.TraceID().String()), zap.String("span_id", sc.SpanID().String())}
}
