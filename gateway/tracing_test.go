package gateway

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/tracing"
)

// TestTraceRequests: spans are named by route, carry workspace and run as
// attributes, continue the caller's trace, and only 5xx mark them failed.
func TestTraceRequests(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	s := &server{Options: Options{Logger: zap.NewNop(), Tracing: &tracing.Provider{
		TracerProvider: tp, Propagator: propagation.TraceContext{},
	}}}
	e := echo.New()
	e.HTTPErrorHandler = s.handleError
	e.Use(s.traceRequests)
	// The renderer stands in for the request logger, which renders errors
	// inside the tracing middleware.
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			return err
		}
	})
	e.GET("/api/v1/workspaces/:ws/runs/:id", func(c echo.Context) error {
		return approval.Errorf(approval.CodeNotFound, "no such run")
	})
	e.POST("/boom/:token", func(c echo.Context) error { return errors.New("disk on fire") })

	do := func(method, path string, header ...string) int {
		req := httptest.NewRequest(method, path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, req)
		return w.Code
	}
	if got := do("GET", "/api/v1/workspaces/prod/runs/r-123", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"); got != 404 {
		t.Fatalf("status %d; want 404", got)
	}
	if got := do("POST", "/boom/s3cret"); got != 500 {
		t.Fatalf("status %d; want 500", got)
	}
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans; want 2", len(spans))
	}
	get, boom := spans[0], spans[1]
	attrs := func(s sdktrace.ReadOnlySpan) map[string]string {
		m := map[string]string{}
		for _, kv := range s.Attributes() {
			m[string(kv.Key)] = kv.Value.Emit()
		}
		return m
	}
	if get.Name() != "GET /api/v1/workspaces/:ws/runs/:id" {
		t.Errorf("span name %q; want the route", get.Name())
	}
	if a := attrs(get); a["gatehouse.workspace"] != "prod" || a["gatehouse.run_id"] != "r-123" || a["http.response.status_code"] != "404" {
		t.Errorf("attributes %v; want workspace prod, run r-123, status 404", a)
	}
	if get.Parent().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || get.Parent().SpanID().String() != "00f067aa0ba902b7" {
		t.Errorf("parent %v; want the caller's traceparent", get.Parent())
	}
	if get.Status().Code == codes.Error {
		t.Error("a 404 marked the span failed")
	}
	if boom.Name() != "POST /boom/:token" || boom.Status().Code != codes.Error || attrs(boom)["error.type"] != "500" {
		t.Errorf("500 span %q status %v attrs %v; want failed, error.type 500", boom.Name(), boom.Status(), attrs(boom))
	}
	for k, v := range attrs(boom) {
		if strings.Contains(v, "s3cret") {
			t.Errorf("attribute %s holds the callback token", k)
		}
	}
}

// BenchmarkTraceRequests is the middleware's cost per request, spans
// recorded and batched (dropped at the end, no network), against none.
func BenchmarkTraceRequests(b *testing.B) {
	for _, traced := range []bool{false, true} {
		name := "off"
		if traced {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			exp := tracetest.NewNoopExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
			defer tp.Shutdown(b.Context()) //nolint:errcheck // a benchmark
			s := &server{Options: Options{Logger: zap.NewNop(), Tracing: &tracing.Provider{TracerProvider: tp, Propagator: propagation.TraceContext{}}}}
			e := echo.New()
			if traced {
				e.Use(s.traceRequests)
			}
			e.GET("/api/v1/workspaces/:ws/runs/:id", func(c echo.Context) error { return c.NoContent(204) })
			req := httptest.NewRequest("GET", "/api/v1/workspaces/prod/runs/r-1", nil)
			b.ReportAllocs()
			for b.Loop() {
				e.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
