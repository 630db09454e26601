package tracing_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gatehouse-dev/gatehouse/tracing"
	"github.com/gatehouse-dev/gatehouse/tracing/tracingtest"
)

// env is a getenv over a map.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestRead(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		enabled  bool
		endpoint string
		service  string
		err      string
	}{
		{name: "off by default", env: nil, service: "gatehouse-worker"},
		{name: "endpoint turns it on", env: map[string]string{tracing.EnvEndpoint: "http://otel:4317"},
			enabled: true, endpoint: "http://otel:4317", service: "gatehouse-worker"},
		{name: "traces endpoint wins", env: map[string]string{tracing.EnvEndpoint: "http://a:4317", tracing.EnvTracesEndpoint: "http://b:4317"},
			enabled: true, endpoint: "http://b:4317", service: "gatehouse-worker"},
		{name: "service name from env", env: map[string]string{tracing.EnvEndpoint: "http://a:4317", tracing.EnvServiceName: "gh-prod"},
			enabled: true, endpoint: "http://a:4317", service: "gh-prod"},
		{name: "sdk disabled", env: map[string]string{tracing.EnvEndpoint: "http://a:4317", tracing.EnvSDKDisabled: "true"},
			endpoint: "http://a:4317", service: "gatehouse-worker"},
		{name: "exporter none", env: map[string]string{tracing.EnvEndpoint: "http://a:4317", tracing.EnvExporter: "none"},
			endpoint: "http://a:4317", service: "gatehouse-worker"},
		{name: "exporter otlp", env: map[string]string{tracing.EnvEndpoint: "http://a:4317", tracing.EnvExporter: "otlp", tracing.EnvProtocol: "grpc"},
			enabled: true, endpoint: "http://a:4317", service: "gatehouse-worker"},
		{name: "http protocol refused", env: map[string]string{tracing.EnvEndpoint: "http://a:4318", tracing.EnvProtocol: "http/protobuf"},
			err: "OTLP/gRPC only"},
		{name: "traces protocol refused", env: map[string]string{tracing.EnvEndpoint: "http://a:4318", tracing.EnvTracesProtocol: "http/json"},
			err: "OTLP/gRPC only"},
		{name: "other exporter refused", env: map[string]string{tracing.EnvExporter: "zipkin"}, err: "only by otlp"},
		{name: "bad disabled flag", env: map[string]string{tracing.EnvSDKDisabled: "perhaps"}, err: "want true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tracing.Read("worker", env(tc.env))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got error %v; want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Enabled != tc.enabled || s.Endpoint != tc.endpoint || s.ServiceName != tc.service {
				t.Errorf("got %+v; want enabled %v, endpoint %q, service %q", s, tc.enabled, tc.endpoint, tc.service)
			}
		})
	}
}

// clearEnv unsets what could turn tracing on in the test's environment.
func clearEnv(t *testing.T) {
	for _, k := range []string{tracing.EnvEndpoint, tracing.EnvTracesEndpoint, tracing.EnvProtocol, tracing.EnvTracesProtocol,
		tracing.EnvExporter, tracing.EnvSDKDisabled, tracing.EnvServiceName, "OTEL_RESOURCE_ATTRIBUTES"} {
		t.Setenv(k, "")
	}
}

func TestOffIsTheNoopProvider(t *testing.T) {
	clearEnv(t)
	p, err := tracing.New(context.Background(), "gateway")
	if err != nil {
		t.Fatal(err)
	}
	if p.Enabled() {
		t.Error("tracing is on without an endpoint")
	}
	_, span := p.Tracer("test").Start(context.Background(), "x")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("a span of the off provider records")
	}
	span.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	var nilProvider *tracing.Provider
	if nilProvider.Enabled() || nilProvider.Shutdown(context.Background()) != nil {
		t.Error("a nil provider is not off")
	}
}

// TestSwitchedOffConnectsNowhere: an endpoint with OTEL_SDK_DISABLED=true
// makes no exporter, so nothing ever connects to the endpoint, not even
// when the provider is flushed.
func TestSwitchedOffConnectsNowhere(t *testing.T) {
	clearEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	t.Setenv(tracing.EnvEndpoint, "http://"+ln.Addr().String())
	t.Setenv(tracing.EnvSDKDisabled, "true")
	p, err := tracing.New(context.Background(), "worker")
	if err != nil {
		t.Fatal(err)
	}
	_, span := p.Tracer("test").Start(context.Background(), "x")
	span.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if p.Enabled() || conns.Load() != 0 {
		t.Errorf("enabled %v, %d connections to the endpoint; want off and none", p.Enabled(), conns.Load())
	}
}

// TestExportsToTheCollector: with an endpoint, spans reach the collector
// on Shutdown, with the process's resource attributes.
func TestExportsToTheCollector(t *testing.T) {
	clearEnv(t)
	c := tracingtest.Start(t)
	t.Setenv(tracing.EnvEndpoint, c.Endpoint())
	p, err := tracing.New(context.Background(), "worker")
	if err != nil {
		t.Fatal(err)
	}
	if !p.Enabled() {
		t.Fatal("tracing is off with an endpoint")
	}
	_, span := p.Tracer("test").Start(context.Background(), "hello")
	span.End()
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	spans := c.Spans()
	if len(spans) != 1 || spans[0].Name != "hello" {
		t.Fatalf("collector got %+v; want one span hello", spans)
	}
	res := spans[0].Resource
	if res["service.name"] != "gatehouse-worker" || res[string(tracing.RoleKey)] != "worker" || res["service.version"] == "" {
		t.Errorf("resource %v; want service.name gatehouse-worker, gatehouse.process worker and a service.version", res)
	}
}
