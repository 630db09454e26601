// Package bench measures Gatehouse against the ceiling of what it is built
// on: a bare Temporal workflow that gates one trivial activity behind
// Updates, run on the same embedded server, in the same process, in
// interleaved batches. Performance in this project is stated only as such
// ratios; absolute figures depend on the machine. It is pure wiring: an
// SDK client, an HTTP client and measurement.
package bench

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/encryption"
)

// defaultPlan is examples/plans/prod-network.json: it destroys a resource,
// as a real plan needing approval does.
//
//go:embed plan.json
var defaultPlan []byte

// Options are the bench's flags.
type Options struct {
	Runs        int // per side and repeat
	Batch       int // runs per batch; the side going first alternates
	Concurrency int // requests in flight per phase
	Repeats     int // the report is the median of the repeats
	Waiting     int // runs per side left waiting to weigh their memory; 0 skips
	PlanPath    string
	OutPath     string // JSON report; "" writes none
	CPUProfile  string // covers the measured repeats only
	MemProfile  string // heap at the end
	// TemporalAddr, when set, is an external cluster to measure instead
	// of the embedded server: the bench then runs Gatehouse's worker and
	// gateway in this process against it (app.StartStack), on task
	// queues of its own. Namespace and Temporal (TLS, API key) are how it
	// connects.
	TemporalAddr string
	Namespace    string
	Temporal     app.TemporalConn
	Logger       *zap.Logger
}

// Report is the JSON the bench writes.
type Report struct {
	Date    time.Time `json:"date"`
	Machine Machine   `json:"machine"`
	Options struct {
		Runs        int `json:"runs"`
		Batch       int `json:"batch"`
		Concurrency int `json:"concurrency"`
		Repeats     int `json:"repeats"`
		Waiting     int `json:"waiting"`
	} `json:"options"`
	// PayloadEncryption says Gatehouse encrypted its payloads
	// (GATEHOUSE_PAYLOAD_KEYS was set); the bare side never does.
	PayloadEncryption bool `json:"payload_encryption"`
	// DevReadySeconds is how long app.StartDev took on a fresh data dir,
	// or app.StartStack against a cluster.
	DevReadySeconds float64 `json:"dev_ready_seconds"`
	// TemporalAddr is the external cluster measured; empty for the
	// embedded server. Against a cluster, CPU and memory are this
	// process's alone (clients, workers, gateway), not the server's.
	TemporalAddr string `json:"temporal_addr,omitempty"`
	// Figures are the medians of Repeats.
	Figures []Figure   `json:"figures"`
	Repeats [][]Figure `json:"repeats"`
	// EventsPerRun is, per side, the mean count of each history event
	// type per run in the last repeat.
	EventsPerRun map[string]map[string]float64 `json:"events_per_run,omitempty"`
	// BytesPerRun is, per side, the mean encoded size of each history
	// event type per run in the last repeat.
	BytesPerRun map[string]map[string]float64 `json:"bytes_per_run,omitempty"`
}

func (o *Options) validate() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"--batch", o.Batch}, {"--concurrency", o.Concurrency}, {"--repeats", o.Repeats}} {
		if f.v < 1 {
			return fmt.Errorf("%s: %d; want at least 1", f.name, f.v)
		}
	}
	switch {
	case o.Runs < 0:
		return fmt.Errorf("--runs: %d; want 0 (only --waiting) or more", o.Runs)
	case o.Waiting < 0:
		return fmt.Errorf("--waiting: %d; want 0 (skip) or more", o.Waiting)
	case o.Runs == 0 && o.Waiting == 0:
		return errors.New("nothing to measure: --runs and --waiting are both 0")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return nil
}

// Run starts a fresh stack in a temporary data dir, measures, prints the
// table to out and writes the JSON report.
func Run(ctx context.Context, o Options, out io.Writer) (err error) {
	if err := o.validate(); err != nil {
		return err
	}
	plan := defaultPlan
	if o.PlanPath != "" {
		if plan, err = os.ReadFile(o.PlanPath); err != nil {
			return fmt.Errorf("--plan: %w", err)
		}
	}
	rep := Report{Date: time.Now().UTC(), Machine: machine(ctx)}
	rep.Options.Runs, rep.Options.Batch, rep.Options.Concurrency = o.Runs, o.Batch, o.Concurrency
	rep.Options.Repeats, rep.Options.Waiting = o.Repeats, o.Waiting
	if rep.PayloadEncryption = os.Getenv(encryption.EnvKeys) != ""; rep.PayloadEncryption {
		fmt.Fprintf(out, "note: %s is set, so Gatehouse encrypts its payloads and the bare side does not; unset it to compare like with like\n", encryption.EnvKeys)
	}

	dir, err := os.MkdirTemp("", "gatehouse-bench-")
	if err != nil {
		return fmt.Errorf("bench data dir: %w", err)
	}
	defer os.RemoveAll(dir)
	st, ready, err := startStack(ctx, dir, o, out)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, st.Close()) }()
	rep.DevReadySeconds, rep.TemporalAddr = ready.Seconds(), o.TemporalAddr

	// Uncompressed on loopback, as app dials: the bare side's client must
	// do the same work per call as Gatehouse's. The embedded server speaks
	// plain gRPC whatever TLS the environment asks for.
	conn := o.Temporal
	if o.TemporalAddr == "" {
		conn = app.TemporalConn{}
	}
	c, err := app.Dial(ctx, app.Options{
		TemporalAddr: st.TemporalAddr(), Namespace: st.Namespace(), Temporal: conn,
		Logger: o.Logger.Named("bench-sdk"),
	})
	if err != nil {
		return fmt.Errorf("bench client: %w", err)
	}
	defer c.Close()
	id := strconv.FormatInt(time.Now().UnixNano(), 36)
	bareQueue := bareTaskQueue + "-" + id // a cluster may have other benches on it
	w := sdkworker.New(c, bareQueue, sdkworker.Options{})
	w.RegisterWorkflowWithOptions(bareWorkflow, workflow.RegisterOptions{Name: bareWorkflowName})
	w.RegisterActivityWithOptions(bareApply, activity.RegisterOptions{Name: bareApplyName})
	if err := w.Start(); err != nil {
		return fmt.Errorf("start the bare worker: %w", err)
	}
	defer w.Stop()

	bare := &bareSide{c: c, approvals: approvalsPerRun, prefix: "bench-bare-" + id, queue: bareQueue}
	gh := &gatehouseSide{
		base: st.HTTPURL(), temporal: c, plan: plan, workspaces: o.Batch,
		// Every request in flight keeps its connection: a pool of two would
		// measure TCP handshakes.
		httpClient: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4 * o.Concurrency}, Timeout: time.Minute},
	}
	fmt.Fprintf(out, "ready in %.1fs; %d runs per side × %d repeats, batches of %d, concurrency %d\n",
		ready.Seconds(), o.Runs, o.Repeats, o.Batch, o.Concurrency)

	// Unmeasured: the first runs of each side pay for connections, caches
	// and task queues coming up, which neither pays again.
	if o.Runs > 0 {
		if err := warmUp(ctx, []side{bare, gh}, c, min(o.Batch, o.Concurrency), o.Concurrency); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	stopProfile, err := startCPUProfile(o.CPUProfile)
	if err != nil {
		return err
	}
	repeats := o.Repeats
	if o.Runs == 0 {
		repeats = 0 // only --waiting
	}
	for r := range repeats {
		figs, types, bytes, err := repeat(ctx, []side{bare, gh}, c, o)
		if err != nil {
			stopProfile()
			return fmt.Errorf("repeat %d: %w", r+1, err)
		}
		rep.Repeats, rep.EventsPerRun, rep.BytesPerRun = append(rep.Repeats, figs), types, bytes
		fmt.Fprintf(out, "repeat %d/%d done\n", r+1, repeats)
	}
	stopProfile()
	rep.Figures = medianFigures(rep.Repeats)

	if o.Waiting > 0 {
		fmt.Fprintf(out, "leaving %d runs of each side waiting to weigh them …\n", o.Waiting)
		rss, err := waitingRSS(ctx, []side{bare, gh}, o.Waiting, o.Concurrency, 2*time.Second)
		if err != nil {
			return err
		}
		kib := func(b float64) float64 { return b / 1024 }
		rep.Figures = append(rep.Figures, figure("RSS per waiting run", "KiB", false, kib(rss["bare"]), kib(rss["gatehouse"])))
	}
	rep.Machine.LoadAvgEnd = loadAvg()
	if err := writeMemProfile(o.MemProfile); err != nil {
		return err
	}

	against := "the embedded server"
	if o.TemporalAddr != "" {
		against = o.TemporalAddr + " (CPU and memory: this process only, not the server)"
	}
	fmt.Fprintf(out, "\n%d runs per side, median of %d repeat(s), against %s; ready in %.1fs; load average %.2f → %.2f on %d cores\n",
		o.Runs, o.Repeats, against, rep.DevReadySeconds, rep.Machine.LoadAvgStart, rep.Machine.LoadAvgEnd, rep.Machine.Cores)
	if err := writeTable(out, rep.Figures); err != nil {
		return err
	}
	return writeReport(o.OutPath, rep)
}

// repeat runs both sides' runs in batches, alternating which goes first,
// so that drift in the machine's load falls on both alike.
func repeat(ctx context.Context, sides []side, c client.Client, o Options) (figs []Figure, types, bytes map[string]map[string]float64, err error) {
	samples := make([]sample, len(sides))
	for k, done := 0, 0; done < o.Runs; k++ {
		n := min(o.Batch, o.Runs-done)
		for j := range sides {
			i := (j + k) % len(sides) // batch k starts with side k mod 2
			if err := batch(ctx, sides[i], c, n, o.Concurrency, &samples[i]); err != nil {
				return nil, nil, nil, err
			}
		}
		done += n
	}
	means := func(counts map[string]int, runs int) map[string]float64 {
		m := make(map[string]float64, len(counts))
		for t, n := range counts {
			m[t] = perRun(float64(n), runs)
		}
		return m
	}
	types, bytes = map[string]map[string]float64{}, map[string]map[string]float64{}
	for i, s := range sides {
		types[s.name()] = means(samples[i].EventTypes, samples[i].Runs)
		bytes[s.name()] = means(samples[i].TypeBytes, samples[i].Runs)
	}
	return figures(&samples[0], &samples[1]), types, bytes, nil
}

// warmUp runs one batch of n runs of each side and forgets it.
func warmUp(ctx context.Context, sides []side, c client.Client, n, conc int) error {
	for _, s := range sides {
		if err := batch(ctx, s, c, n, conc, &sample{}); err != nil {
			return err
		}
	}
	return nil
}

func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func writeMemProfile(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	runtime.GC() // the heap as live objects, not as the last cycle left it
	err = pprof.WriteHeapProfile(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	return nil
}

func writeReport(path string, rep Report) error {
	if path == "" {
		return nil
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}
