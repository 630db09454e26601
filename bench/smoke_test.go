package bench

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/gatehouse-dev/gatehouse/devserver"
)

// TestRunSmoke runs the whole bench, small: a real dev stack, both sides,
// the RSS step, the JSON report. It checks the bench works, not the
// figures (the machine running tests is anything but quiet).
func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "bench.json")
	var table strings.Builder
	err := Run(ctx, Options{Runs: 4, Batch: 2, Concurrency: 2, Repeats: 1, Waiting: 3, OutPath: out}, &table)
	rep := readReport(t, out, err, table.String())
	if len(rep.Repeats) != 1 || len(rep.Figures) != len(rep.Repeats[0])+1 {
		t.Fatalf("%d repeats, %d figures; want 1 repeat and its figures plus RSS", len(rep.Repeats), len(rep.Figures))
	}
	for _, f := range rep.Figures {
		measured := func(v float64) bool { return v > 0 }
		if strings.HasPrefix(f.Name, "last decision→") {
			// Timed from the client's answer to the last approval, which
			// may arrive after the run applied or closed: the answer reads
			// the run once the Update's task, and any task queued behind
			// it, has completed. Negative is measured; zero is not.
			measured = func(v float64) bool { return v != 0 && !math.IsNaN(v) }
		}
		if f.Name != "RSS per waiting run" && (!measured(f.Bare) || !measured(f.Gatehouse)) {
			t.Errorf("figure %q: bare %v, gatehouse %v; want both measured", f.Name, f.Bare, f.Gatehouse)
		}
	}
	if rep.Machine.Cores < 1 || rep.Machine.GoVersion == "" || rep.DevReadySeconds <= 0 {
		t.Errorf("machine %+v, ready %vs; want them filled in", rep.Machine, rep.DevReadySeconds)
	}
	if !strings.Contains(table.String(), "cost ×bare") {
		t.Errorf("no table in the output:\n%s", table.String())
	}
}

// TestRunAgainstACluster runs the bench against a Temporal server it did
// not start (--temporal-addr): Gatehouse's worker and gateway run in the
// bench's process on queues of their own, the bare worker beside them.
func TestRunAgainstACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{
		DataDir: t.TempDir(), FrontendAddr: "127.0.0.1:0", Namespace: "bench", Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop() //nolint:errcheck // the test is over
	out := filepath.Join(t.TempDir(), "bench.json")
	var table strings.Builder
	err = Run(ctx, Options{Runs: 2, Batch: 2, Concurrency: 2, Repeats: 1, OutPath: out,
		TemporalAddr: srv.FrontendAddr(), Namespace: "bench"}, &table)
	rep := readReport(t, out, err, table.String())
	if rep.TemporalAddr != srv.FrontendAddr() || len(rep.Figures) == 0 || rep.EventsPerRun["gatehouse"]["activity Apply"] != 1 {
		t.Fatalf("report against %q with %d figures, gatehouse events %v; want the cluster's, measured, each run applied once",
			rep.TemporalAddr, len(rep.Figures), rep.EventsPerRun["gatehouse"])
	}
	if !strings.Contains(table.String(), "against "+srv.FrontendAddr()) {
		t.Errorf("the table does not say what it measured:\n%s", table.String())
	}
}

// readReport fails the test when the bench failed (err, with what it
// printed), else reads the JSON report it wrote to path.
func readReport(t *testing.T, path string, err error, printed string) Report {
	t.Helper()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, printed)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("report: %v", err)
	}
	return rep
}
