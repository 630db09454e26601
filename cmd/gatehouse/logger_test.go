package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

// fileLogger builds the logger of s to a file; read flushes it and returns
// what it wrote.
func fileLogger(t *testing.T, s logSettings, console bool) (logger *zap.Logger, read func() string) {
	t.Helper()
	cfg, err := loggerConfig(s, console)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "log")
	cfg.OutputPaths = []string{path}
	if logger, err = cfg.Build(); err != nil {
		t.Fatal(err)
	}
	return logger, func() string {
		_ = logger.Sync()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
}

// logLine logs one line through a named logger of s and returns it.
func logLine(t *testing.T, s logSettings, console bool) string {
	t.Helper()
	logger, read := fileLogger(t, s, console)
	logger.Named("gateway").Info("http request", zap.String("method", "POST"), zap.Int("status", 201))
	return strings.TrimSpace(read())
}

// TestProductionLogsAreJSON: worker, gateway and setup log one JSON object
// a line, with an ISO 8601 time, level, logger, caller, message and the
// fields.
func TestProductionLogsAreJSON(t *testing.T) {
	line := logLine(t, logSettings{level: "info"}, false)
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("log line %q is not JSON: %v", line, err)
	}
	for k, want := range map[string]any{"level": "info", "logger": "gateway", "msg": "http request", "method": "POST", "status": 201.0} {
		if got[k] != want {
			t.Errorf("%s = %v; want %v (line %s)", k, got[k], want, line)
		}
	}
	ts, _ := got["ts"].(string)
	if _, err := time.Parse("2006-01-02T15:04:05.000Z0700", ts); err != nil {
		t.Errorf("ts %v is not ISO 8601: %v", got["ts"], err)
	}
	if c, _ := got["caller"].(string); !strings.Contains(c, "logger_test.go:") {
		t.Errorf("caller %v; want this file", got["caller"])
	}
}

// TestLogFormat: --log-format chooses JSON for dev and console for the
// others; anything else is refused.
func TestLogFormat(t *testing.T) {
	if line := logLine(t, logSettings{level: "info", format: "json"}, true); !json.Valid([]byte(line)) {
		t.Errorf("dev with --log-format json logged %q", line)
	}
	if line := logLine(t, logSettings{level: "info"}, true); json.Valid([]byte(line)) || !strings.Contains(line, "http request") {
		t.Errorf("dev by default logged %q; want console text", line)
	}
	if line := logLine(t, logSettings{level: "info", format: "console"}, false); json.Valid([]byte(line)) {
		t.Errorf("worker with --log-format console logged JSON %q", line)
	}
	if _, err := loggerConfig(logSettings{level: "info", format: "xml"}, false); err == nil {
		t.Error("--log-format xml was taken")
	}
	if _, err := loggerConfig(logSettings{level: "loud"}, false); err == nil {
		t.Error("--log-level loud was taken")
	}
}

// TestAccessLogIsNotSampled: zap's production config drops repeats of a
// message past 100 a second; the access log must keep every request, so
// a burst of 500 requests logs 500 lines.
func TestAccessLogIsNotSampled(t *testing.T) {
	logger, read := fileLogger(t, logSettings{level: "info"}, false)
	const n = 500
	for i := range n {
		logger.Named("gateway").Info("http request", zap.Int("i", i))
	}
	if got := strings.Count(read(), "\n"); got != n {
		t.Errorf("logged %d of %d requests", got, n)
	}
}
