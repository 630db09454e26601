package app

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/tracing"
)

// startTracing builds the process's tracing from the OTEL_* environment
// (package tracing): off, and free, unless an OTLP endpoint is set. Called
// before dial, whose client carries the SDK's tracing interceptor.
func (p *parts) startTracing(ctx context.Context, role string) error {
	t, err := tracing.New(ctx, role)
	if err != nil {
		return settingsError{fmt.Errorf("tracing: %w", err)}
	}
	p.tracing = t
	if t.Enabled() {
		// The SDK reports export failures (a collector down) to
		// OpenTelemetry's one global error handler, by default the
		// standard library's log: plain text amid the JSON lines. Set
		// here, once per process, in wiring only.
		logger := p.opts.Logger.Named("tracing")
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			logger.Warn("tracing", zap.Error(err))
		}))
		logger.Info("tracing exported by OTLP", zap.String("role", role))
	}
	return nil
}

// clientInterceptors are the Temporal client's interceptors: with tracing
// on, the SDK's OpenTelemetry interceptor, which the worker made from the
// client inherits. It carries the span context in Temporal headers, from
// the gateway's start or update, through the workflow, to each activity;
// on the workflow side it makes spans only outside replay, so workflow
// code stays deterministic.
func (p *parts) clientInterceptors() ([]interceptor.ClientInterceptor, error) {
	if !p.tracing.Enabled() {
		return nil, nil
	}
	i, err := temporalotel.NewTracingInterceptor(temporalotel.TracerOptions{
		Tracer:            p.tracing.Tracer("go.temporal.io/sdk"),
		TextMapPropagator: p.tracing.Propagator,
	})
	if err != nil {
		return nil, fmt.Errorf("temporal tracing interceptor: %w", err)
	}
	return []interceptor.ClientInterceptor{i}, nil
}

// stopTracing exports the spans still buffered: last, once the worker and
// gateway have ended theirs.
func (p *parts) stopTracing() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.tracing.Shutdown(ctx); err != nil {
		p.opts.Logger.Warn("traces not all exported", zap.Error(err))
	}
}
