package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/cmd/gatehouse/cli"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/starter"
)

func newDevCmd() *cobra.Command {
	var o app.DevOptions
	var logs logSettings
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process: embedded Temporal (SQLite file) with its Web UI, the worker and the gateway",
		Example: `  gatehouse dev
  gatehouse dev --data-dir /tmp/gh --http-addr 127.0.0.1:9090 --ui-addr ""`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(logs, true)
			if err != nil {
				return err
			}
			defer logger.Sync() //nolint:errcheck // nothing useful to do on a failed flush
			o.Logger = logger
			startCtx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			dev, err := app.StartDev(startCtx, o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "\nGatehouse dev is running.\n")
			fmt.Fprintf(out, "  Web UI (approvers):  %s/ui/\n", dev.HTTPURL())
			fmt.Fprintf(out, "  Gateway (REST API):  %s\n", dev.HTTPURL())
			fmt.Fprintf(out, "  Temporal frontend:   %s (namespace %s)\n", dev.TemporalAddr(), dev.Namespace())
			if dev.UIURL() != "" {
				fmt.Fprintf(out, "  Temporal Web UI:     %s/namespaces/%s/workflows\n", dev.UIURL(), dev.Namespace())
			}
			fmt.Fprintf(out, "  Data directory:      %s\n", o.DataDir)
			fmt.Fprintf(out, "  Config:              %s\n", o.ConfigPath)
			fmt.Fprintf(out, "Press Ctrl-C to stop.\n\n")
			<-cmd.Context().Done()
			fmt.Fprintln(out, "shutting down")
			return dev.Close()
		},
	}
	commonFlags(cmd, &o.Options, &logs, "examples/gatehouse.yaml", "./.gatehouse")
	f := cmd.Flags()
	f.StringVar(&o.UIAddr, "ui-addr", "127.0.0.1:8233", "Temporal Web UI address; empty disables it")
	f.StringVar(&o.HTTPAddr, "http-addr", "127.0.0.1:8080", "gateway address")
	pprofFlag(cmd, &o.PprofAddr)
	metricsFlag(cmd, &o.MetricsAddr)
	stopTimeoutFlag(cmd, &o.StopTimeout)
	return cmd
}

// clusterCmd is a command that works against a Temporal cluster with the
// common flags and a JSON logger; run gets the options with the logger set.
func clusterCmd(use, short string, run func(cmd *cobra.Command, o app.Options) error) (*cobra.Command, *app.Options) {
	var o app.Options
	var logs logSettings
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(logs, false)
			if err != nil {
				return err
			}
			defer logger.Sync() //nolint:errcheck // nothing useful to do on a failed flush
			o.Logger = logger
			return run(cmd, o)
		},
	}
	commonFlags(cmd, &o, &logs, "gatehouse.yaml", "./.gatehouse")
	return cmd, &o
}

func newWorkerCmd() *cobra.Command {
	cmd, o := clusterCmd("worker", "Run the worker (run workflow, apply, policy and notify activities) against a Temporal cluster",
		func(cmd *cobra.Command, o app.Options) error { return app.RunWorker(cmd.Context(), o) })
	pprofFlag(cmd, &o.PprofAddr)
	metricsFlag(cmd, &o.MetricsAddr)
	stopTimeoutFlag(cmd, &o.StopTimeout)
	f := cmd.Flags()
	var queues []string
	if v := os.Getenv("GATEHOUSE_WORKER_QUEUES"); v != "" {
		queues = strings.Split(v, ",")
	}
	f.StringSliceVar(&o.Queues, "queues", queues,
		"task queues to poll, comma-separated (env GATEHOUSE_WORKER_QUEUES); default: --task-queue and every workspace's task_queue")
	f.IntVar(&o.MaxConcurrentActivities, "max-concurrent-activities", 0,
		"plans, applies and notices run at once per polled queue; 0 keeps the Temporal SDK default (1000)")
	f.IntVar(&o.MaxConcurrentWorkflowTasks, "max-concurrent-workflow-tasks", 0,
		"workflow tasks run at once per polled queue; 0 keeps the Temporal SDK default (1000)")
	cmd.Example = `  GATEHOUSE_SIGNING_KEYS=$(cat /run/secrets/gatehouse-keys) \
    gatehouse worker --temporal-addr temporal:7233 --config /etc/gatehouse/gatehouse.yaml --data-dir /var/lib/gatehouse`
	return cmd
}

// metricsFlag binds --metrics-addr (env GATEHOUSE_METRICS_ADDR), off by
// default.
func metricsFlag(cmd *cobra.Command, addr *string) {
	cmd.Flags().StringVar(addr, "metrics-addr", envOr("GATEHOUSE_METRICS_ADDR", ""),
		"serve Prometheus metrics at /metrics on this address, e.g. 127.0.0.1:9464 (env GATEHOUSE_METRICS_ADDR); empty serves none")
}

// pprofFlag binds --pprof-addr, off by default.
func pprofFlag(cmd *cobra.Command, addr *string) {
	cmd.Flags().StringVar(addr, "pprof-addr", "", "serve Go profiles (net/http/pprof) on this loopback address, e.g. 127.0.0.1:6060; empty serves none")
}

// stopTimeoutFlag binds --stop-timeout, defaulting to GATEHOUSE_STOP_TIMEOUT
// when set; a malformed variable fails the command rather than being
// ignored.
func stopTimeoutFlag(cmd *cobra.Command, d *time.Duration) {
	cmd.Flags().DurationVar(d, "stop-timeout", app.DefaultStopTimeout,
		"on SIGTERM or Ctrl-C, how long running applies may take to finish before they are interrupted (env GATEHOUSE_STOP_TIMEOUT)")
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		if v := os.Getenv("GATEHOUSE_STOP_TIMEOUT"); v != "" && !cmd.Flags().Changed("stop-timeout") {
			parsed, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("GATEHOUSE_STOP_TIMEOUT: %w", err)
			}
			*d = parsed
		}
		if *d <= 0 {
			return fmt.Errorf("--stop-timeout: %s is not a positive duration", *d)
		}
		return nil
	}
}

func newGatewayCmd() *cobra.Command {
	cmd, o := clusterCmd("gateway", "Serve the REST API against a Temporal cluster",
		func(cmd *cobra.Command, o app.Options) error { return app.RunGateway(cmd.Context(), o) })
	cmd.Flags().StringVar(&o.HTTPAddr, "http-addr", envOr("GATEHOUSE_HTTP_ADDR", "127.0.0.1:8080"), "listen address (env GATEHOUSE_HTTP_ADDR)")
	metricsFlag(cmd, &o.MetricsAddr)
	cmd.Example = `  GATEHOUSE_SIGNING_KEYS=$(cat /run/secrets/gatehouse-keys) GATEHOUSE_APPROVAL_KEY=$(cat /run/secrets/approval-key) \
    gatehouse gateway --temporal-addr temporal:7233 --http-addr 0.0.0.0:8080 --data-dir /var/lib/gatehouse`
	return cmd
}

func newSetupCmd() *cobra.Command {
	var wait time.Duration
	cmd, opts := clusterCmd("setup", "Create the Temporal namespace when missing, set its retention and register Gatehouse's search attributes (idempotent)",
		func(cmd *cobra.Command, o app.Options) error {
			// The wait for Temporal plus a minute for the work itself.
			ctx, cancel := context.WithTimeout(cmd.Context(), wait+time.Minute)
			defer cancel()
			change, err := app.SetupWait(ctx, o, wait)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case change.Created:
				fmt.Fprintf(out, "namespace %s created at %s; closed runs kept %s\n", o.Namespace, o.TemporalAddr, o.Retention)
			case change.RetentionFrom != 0:
				fmt.Fprintf(out, "namespace %s at %s: closed runs now kept %s (was %s)\n", o.Namespace, o.TemporalAddr, o.Retention, change.RetentionFrom)
			default:
				fmt.Fprintf(out, "namespace %s at %s exists; closed runs kept %s\n", o.Namespace, o.TemporalAddr, o.Retention)
			}
			fmt.Fprintf(out, "search attributes registered on namespace %s\n", o.Namespace)
			return nil
		})
	f := cmd.Flags()
	f.DurationVar(&opts.Retention, "retention", app.DefaultRetention,
		"how long the namespace keeps finished runs' histories (at least 24h); the audit trail keeps the record beyond it")
	f.DurationVar(&wait, "wait", 0,
		"keep retrying this long while Temporal does not answer yet (for a setup job started together with the cluster); 0 tries once")
	cmd.Example = "  gatehouse setup --temporal-addr temporal:7233 --namespace default --retention 720h\n" +
		"  gatehouse setup --wait 3m   # in a compose stack or a Kubernetes Job, beside a starting cluster"
	return cmd
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Work with configuration files"}
	cmd.AddCommand(&cobra.Command{
		Use:     "validate FILE",
		Short:   "Check a config file: print every problem with its field path, and warnings; exit non-zero on problems",
		Example: "  gatehouse config validate examples/gatehouse.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0])
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return &cli.ExitError{Code: cli.ExitGeneric} // reported above
			}
			out := cmd.OutOrStdout()
			for _, w := range append(cfg.Warnings(), cfg.TokenWarnings(time.Now())...) {
				fmt.Fprintf(out, "warning: %s\n", w)
			}
			fmt.Fprintf(out, "%s: ok (version %s)\n", args[0], cfg.Version)
			return nil
		},
	})
	return cmd
}

func newRunsCmd() *cobra.Command {
	var workspace string
	var stuck time.Duration
	var asJSON bool
	cmd, _ := clusterCmd("runs --stuck DURATION", "List runs that have waited for people longer than DURATION (from Temporal visibility)",
		func(cmd *cobra.Command, o app.Options) error {
			if stuck <= 0 {
				return fmt.Errorf("--stuck: a positive duration is required, e.g. --stuck 2h")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			runs, err := app.Stuck(ctx, o, stuck, workspace)
			if err != nil {
				return err
			}
			return printStuck(cmd.OutOrStdout(), runs, stuck, asJSON)
		})
	f := cmd.Flags()
	f.DurationVar(&stuck, "stuck", 0, "list runs waiting for people longer than this, e.g. 2h")
	f.StringVarP(&workspace, "workspace", "w", "", "only this workspace")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Example = "  gatehouse runs --stuck 2h\n  gatehouse runs --stuck 30m --workspace prod-network --json"
	return cmd
}

func printStuck(out io.Writer, runs []starter.RunSummary, stuck time.Duration, asJSON bool) error {
	if asJSON {
		if runs == nil {
			runs = []starter.RunSummary{}
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"runs": runs})
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tWORKSPACE\tSTATUS\tWAITING\tDEADLINE\tPENDING APPROVERS")
	now := time.Now()
	for _, r := range runs {
		waiting, deadline := "-", "-"
		if r.PendingSince != nil {
			waiting = now.Sub(*r.PendingSince).Round(time.Second).String()
		}
		if r.Deadline != nil {
			deadline = r.Deadline.UTC().Format("2006-01-02 15:04 UTC")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Workspace, r.Status, waiting, deadline, strings.Join(r.PendingApprovers, ","))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d run(s) waiting longer than %s\n", len(runs), stuck)
	return nil
}
