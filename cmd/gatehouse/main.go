// Command gatehouse is Gatehouse's one binary: the all-in-one dev process,
// the worker and the gateway for real deployments, and small CLI clients.
// It only parses flags and wires package app together.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/cmd/gatehouse/cli"
	"github.com/gatehouse-dev/gatehouse/signing"
	"github.com/gatehouse-dev/gatehouse/worker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// The first signal asks for a graceful stop (a worker waits for its
	// applies); restoring the default handling then lets a second one end
	// the process at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		code, msg := cli.Exit(err)
		if msg != "" {
			fmt.Fprintln(os.Stderr, "gatehouse:", msg)
		}
		stop()
		os.Exit(code)
	}
}

// newRoot is the client verbs of package cli and the server processes.
func newRoot() *cobra.Command {
	root := cli.NewRoot()
	root.AddCommand(newDevCmd(), newWorkerCmd(), newGatewayCmd(), newSetupCmd(), newRunsCmd(), newConfigCmd(), newBenchCmd(),
		newTokenCmd(), newHealthcheckCmd())
	return root
}

// envOr returns the environment variable's value, or def when unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

// commonFlags binds the settings every server process shares.
func commonFlags(cmd *cobra.Command, o *app.Options, logs *logSettings, defConfig, defDataDir string) {
	f := cmd.Flags()
	f.StringVar(&o.ConfigPath, "config", envOr("GATEHOUSE_CONFIG", defConfig), "config file (env GATEHOUSE_CONFIG)")
	f.StringVar(&o.DataDir, "data-dir", envOr("GATEHOUSE_DATA_DIR", defDataDir), "data directory: stored plans (env GATEHOUSE_DATA_DIR)")
	f.StringVar(&o.TemporalAddr, "temporal-addr", envOr("TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend host:port (env TEMPORAL_ADDRESS)")
	f.StringVar(&o.Namespace, "namespace", envOr("TEMPORAL_NAMESPACE", "default"), "Temporal namespace (env TEMPORAL_NAMESPACE)")
	temporalFlags(cmd, &o.Temporal)
	f.StringVar(&o.TaskQueue, "task-queue", envOr("GATEHOUSE_TASK_QUEUE", worker.DefaultTaskQueue), "task queue of the run workflow")
	f.StringVar(&logs.level, "log-level", envOr("GATEHOUSE_LOG_LEVEL", "info"), "debug | info | warn | error")
	f.StringVar(&logs.format, "log-format", envOr("GATEHOUSE_LOG_FORMAT", ""),
		"json | console (env GATEHOUSE_LOG_FORMAT); default console for dev, json for every other process")
	// Keys are secrets: only from the environment, never a flag (flags
	// show in ps and shell history).
	o.SigningKeys = os.Getenv(signing.EnvKeys)
}

// logSettings are a process's --log-level and --log-format.
type logSettings struct {
	level  string
	format string // "json", "console", or "" for the process's default
}

// newLogger builds the process's logger to stderr; console is the format
// when none is chosen.
func newLogger(s logSettings, console bool) (*zap.Logger, error) {
	cfg, err := loggerConfig(s, console)
	if err != nil {
		return nil, err
	}
	return cfg.Build()
}

// loggerConfig is zap's production JSON config — one object a line with
// level, ts (ISO 8601), logger, caller, msg and the fields — or its
// development console config for people reading a terminal.
func loggerConfig(s logSettings, console bool) (zap.Config, error) {
	lvl, err := zapcore.ParseLevel(s.level)
	if err != nil {
		return zap.Config{}, fmt.Errorf("--log-level: %w", err)
	}
	switch s.format {
	case "json":
		console = false
	case "console":
		console = true
	case "":
	default:
		return zap.Config{}, fmt.Errorf("--log-format %q: want json or console", s.format)
	}
	cfg := zap.NewProductionConfig()
	// Log collectors parse ISO 8601 without help; zap's default here is
	// seconds since the epoch as a float.
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	// zap samples by default (past 100 lines of one message a second it
	// keeps every 100th): under load the access log would drop requests
	// and stop telling the truth. Every line is written.
	cfg.Sampling = nil
	if console {
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	return cfg, nil
}
