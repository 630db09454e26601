// Package tracing builds a process's OpenTelemetry tracer provider from the
// standard OTEL_* environment. Tracing is off unless an OTLP endpoint is
// configured: then nothing is exported, no connection is made, and the
// provider is OpenTelemetry's no-op, whose spans cost next to nothing.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// The environment variables read here; the OTLP exporter and the SDK read
// the rest of the standard set themselves (OTEL_EXPORTER_OTLP_HEADERS,
// _TIMEOUT, _CERTIFICATE, OTEL_TRACES_SAMPLER, OTEL_BSP_*, ...).
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvExporter       = "OTEL_TRACES_EXPORTER"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
	EnvServiceName    = "OTEL_SERVICE_NAME"
)

// RoleKey is the resource attribute naming the Gatehouse process (dev,
// worker, gateway), so one service name per role can still be told apart
// when OTEL_SERVICE_NAME sets a common one.
const RoleKey = attribute.Key("gatehouse.process")

// Provider is a process's tracing: the tracer provider spans are made with
// and the propagator that carries their context across HTTP and Temporal.
type Provider struct {
	// TracerProvider makes the spans; OpenTelemetry's no-op when tracing
	// is off.
	TracerProvider trace.TracerProvider
	// Propagator is W3C trace context and baggage.
	Propagator propagation.TextMapPropagator
	// sdk is nil when tracing is off.
	sdk *sdktrace.TracerProvider
}

// Settings are what the environment asks for.
type Settings struct {
	// Enabled is true when an endpoint is configured and tracing is not
	// switched off (OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none).
	Enabled bool
	// Endpoint is the traces endpoint, as given (the exporter parses it).
	Endpoint string
	// ServiceName is OTEL_SERVICE_NAME, or gatehouse-<role>.
	ServiceName string
}

// Read reads the settings of a process in role from getenv (os.Getenv in
// production). It refuses settings it cannot honour rather than exporting
// nothing silently: a protocol other than gRPC, an exporter other than otlp.
func Read(role string, getenv func(string) string) (Settings, error) {
	s := Settings{ServiceName: strings.TrimSpace(getenv(EnvServiceName))}
	if s.ServiceName == "" {
		s.ServiceName = "gatehouse-" + role
	}
	s.Endpoint = strings.TrimSpace(getenv(EnvTracesEndpoint))
	if s.Endpoint == "" {
		s.Endpoint = strings.TrimSpace(getenv(EnvEndpoint))
	}
	if v := strings.TrimSpace(getenv(EnvSDKDisabled)); v != "" {
		off, err := strconv.ParseBool(v)
		if err != nil {
			return Settings{}, fmt.Errorf("%s=%q: want true or false", EnvSDKDisabled, v)
		}
		if off {
			return s, nil
		}
	}
	switch v := strings.TrimSpace(getenv(EnvExporter)); v {
	case "none":
		return s, nil
	case "", "otlp":
	default:
		return Settings{}, fmt.Errorf("%s=%q: gatehouse exports traces only by otlp (or none)", EnvExporter, v)
	}
	if s.Endpoint == "" {
		return s, nil
	}
	protocol := strings.TrimSpace(getenv(EnvTracesProtocol))
	if protocol == "" {
		protocol = strings.TrimSpace(getenv(EnvProtocol))
	}
	if protocol != "" && protocol != "grpc" {
		return Settings{}, fmt.Errorf("%s=%q: gatehouse exports traces over OTLP/gRPC only (protocol grpc, usually port 4317)", EnvProtocol, protocol)
	}
	s.Enabled = true
	return s, nil
}

// New builds the tracing of a process in role ("dev", "worker",
// "gateway") from the environment. With tracing off it returns the no-op
// provider and creates no exporter. The exporter connects lazily, so an
// unreachable collector does not stop the process; spans it cannot take are
// dropped (and the SDK logs why).
func New(ctx context.Context, role string) (*Provider, error) {
	p := &Provider{
		TracerProvider: noop.NewTracerProvider(),
		Propagator:     propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	s, err := Read(role, os.Getenv)
	if err != nil {
		return nil, err
	}
	if !s.Enabled {
		return p, nil
	}
	// Reads the endpoint (http:// means plaintext), headers, timeout,
	// compression and certificate from the same environment.
	exp, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter for %s: %w", s.Endpoint, err)
	}
	// Later detectors win: OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME
	// override the defaults given first.
	res, err := resource.New(ctx,
		resource.WithAttributes(
			semconv.ServiceName(s.ServiceName),
			semconv.ServiceVersion(Version()),
			RoleKey.String(role),
		),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	// The sampler comes from OTEL_TRACES_SAMPLER(_ARG); parentbased_always_on
	// when unset.
	p.sdk = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	p.TracerProvider = p.sdk
	return p, nil
}

// Enabled reports whether spans are recorded and exported.
func (p *Provider) Enabled() bool { return p != nil && p.sdk != nil }

// Tracer returns the named tracer, a no-op one on a nil Provider.
func (p *Provider) Tracer(name string) trace.Tracer {
	if p == nil {
		return noop.NewTracerProvider().Tracer(name)
	}
	return p.TracerProvider.Tracer(name)
}

// Shutdown exports the spans still buffered and stops the exporter; ctx
// bounds how long that may take. A no-op when tracing is off.
func (p *Provider) Shutdown(ctx context.Context) error {
	if !p.Enabled() {
		return nil
	}
	if err := p.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush traces: %w", err)
	}
	return nil
}

// Version is the binary's version as `gatehouse version` reports it: the
// module version of a released build, else the commit it was built from.
func Version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	if v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && s.Value != "" {
			return s.Value
		}
	}
	if v == "" {
		return "unknown"
	}
	return v
}
