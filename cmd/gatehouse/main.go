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
func commonFlags(cmd *cobra.Command, o *app.Options, logLevel *string, defConfig, defDataDir string) {
	f := cmd.Flags()
	f.StringVar(&o.ConfigPath, "config", envOr("GATEHOUSE_CONFIG", defConfig), "config file (env GATEHOUSE_CONFIG)")
	f.StringVar(&o.DataDir, "data-dir", envOr("GATEHOUSE_DATA_DIR", defDataDir), "data directory: stored plans (env GATEHOUSE_DATA_DIR)")
	f.StringVar(&o.TemporalAddr, "temporal-addr", envOr("TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend host:port (env TEMPORAL_ADDRESS)")
	f.StringVar(&o.Namespace, "namespace", envOr("TEMPORAL_NAMESPACE", "default"), "Temporal namespace (env TEMPORAL_NAMESPACE)")
	temporalFlags(cmd, &o.Temporal)
	f.StringVar(&o.TaskQueue, "task-queue", envOr("GATEHOUSE_TASK_QUEUE", worker.DefaultTaskQueue), "task queue of the run workflow")
	f.StringVar(logLevel, "log-level", envOr("GATEHOUSE_LOG_LEVEL", "info"), "debug | info | warn | error")
	// Keys are secrets: only from the environment, never a flag (flags
	// show in ps and shell history).
	o.SigningKeys = os.Getenv(signing.EnvKeys)
}

func newLogger(level string, console bool) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	if console {
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	return cfg.Build()
}
