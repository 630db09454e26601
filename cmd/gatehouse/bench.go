package main

import (
	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/bench"
)

// newBenchCmd is `gatehouse bench`: flags only, package bench does the rest.
func newBenchCmd() *cobra.Command {
	var o bench.Options
	var logLevel string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Gatehouse against a bare Temporal workflow on the same server, side by side; print a table of ratios",
		Long: `bench starts a fresh gatehouse dev stack (embedded Temporal, worker,
gateway) in a temporary data dir, and beside it a bare Temporal workflow
on its own task queue: it waits for two approve Updates, runs one trivial
activity and completes. It drives both in interleaved batches, Gatehouse
over its REST API with a real plan needing two approvals, and reports
each figure for both sides and their ratio.

With --temporal-addr it measures that cluster instead: it runs
Gatehouse's worker and gateway in this process against it, on task
queues of their own, and registers the search attributes (as setup does).
CPU and memory are then this process's alone, not the server's.`,
		Example: `  gatehouse bench --runs 40 --repeats 1
  gatehouse bench --out bench.json --cpuprofile cpu.pprof
  gatehouse bench --runs 0 --waiting 5000   # memory per waiting run only
  gatehouse bench --temporal-addr temporal.internal:7233 --namespace bench`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(logSettings{level: logLevel}, true)
			if err != nil {
				return err
			}
			defer logger.Sync() //nolint:errcheck // nothing useful to do on a failed flush
			o.Logger = logger
			return bench.Run(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Runs, "runs", 100, "runs per side in each repeat")
	f.IntVar(&o.Batch, "batch", 20, "runs per batch; batches alternate which side goes first")
	f.IntVar(&o.Concurrency, "concurrency", 8, "requests in flight at a time in each phase")
	f.IntVar(&o.Repeats, "repeats", 3, "repeats; the report is their median")
	f.IntVar(&o.Waiting, "waiting", 0, "also leave this many runs of each side waiting and report resident memory per waiting run (0 skips)")
	f.StringVar(&o.PlanPath, "plan", "", "plan JSON to submit (default: a copy of examples/plans/prod-network.json)")
	f.StringVar(&o.OutPath, "out", "bench.json", "write the JSON report here; empty writes none")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured repeats here")
	f.StringVar(&o.MemProfile, "memprofile", "", "write a heap profile at the end here")
	f.StringVar(&logLevel, "log-level", "warn", "log level of the stack under test: debug | info | warn | error")
	f.StringVar(&o.TemporalAddr, "temporal-addr", "", "measure this Temporal cluster (host:port) instead of an embedded server")
	f.StringVar(&o.Namespace, "namespace", "default", "the cluster's namespace (with --temporal-addr)")
	temporalFlags(cmd, &o.Temporal)
	return cmd
}
