package app

import (
	"context"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-dev/gatehouse/tracing"
)

// TestExportFailuresAreLogged: a collector that is not there is reported
// through the process's zap logger, not the standard library's log.
func TestExportFailuresAreLogged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	t.Setenv(tracing.EnvEndpoint, "http://"+addr)
	t.Setenv(tracing.EnvSDKDisabled, "")
	t.Setenv(tracing.EnvExporter, "")
	// Each export gives up after 200 ms instead of retrying for a minute.
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "200")
	core, logs := observer.New(zapcore.WarnLevel)
	p := &parts{opts: Options{Logger: zap.New(core)}}
	if err := p.startTracing(context.Background(), "worker"); err != nil {
		t.Fatal(err)
	}
	_, span := p.tracing.Tracer("test").Start(context.Background(), "x")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = p.tracing.Shutdown(ctx)
	if logs.FilterLoggerName("tracing").Len() == 0 {
		t.Errorf("export failure not logged through zap; got %v", logs.All())
	}
}
