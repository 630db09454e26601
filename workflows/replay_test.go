package workflows_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/gatehouse-dev/gatehouse/compression"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// TestReplayRecordedHistories replays histories recorded from real runs
// (gatehouse dev, testdata/history-*.json): of the first released workflow,
// stages and a sign-off with a revoke, a request-changes round trip, a
// bypass, a timeout, a rejection and a run no rule matched; of versionLean,
// a two-approval run that applied (recorded by gatehouse bench: the lock in
// local activities, one notice per task, the last one local); of leanV2, a
// two-approval run with a webhook and a reminder in between that applied
// (one wait timer across the first approval); of leanV3, a one-approval
// gate with a webhook (the start's notice recorded in its task, the webhook
// left to NotifyFrom) and a two-approval run that applied; of leanV4 (the
// upserter and the deliverer started only when they have work), a webhook
// gate, a two-approval run with reminders in between and a two-approval run,
// each applied, recorded with their payloads compressed as every process
// now writes them; and a two-approval run that applied whose input names
// its version (StartLean), so it has no version marker. A change to the
// workflow that is not guarded by workflow.GetVersion fails here with a
// non-determinism error, before it can break runs in flight.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/history-*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 14 {
		t.Fatalf("found %d recorded histories; want the 14 checked in", len(files))
	}
	// Histories since compression hold zlib payloads; older ones plain
	// JSON. The decode-only codec reads both, as a worker does.
	payloads := compression.Chain{&compression.Codec{DecodeOnly: true}}.DataConverter()
	logger := log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			r, err := sdkworker.NewWorkflowReplayerWithOptions(sdkworker.WorkflowReplayerOptions{DataConverter: payloads})
			if err != nil {
				t.Fatal(err)
			}
			r.RegisterWorkflowWithOptions(testRunner().Run, workflow.RegisterOptions{Name: workflows.RunWorkflowName})
			if err := r.ReplayWorkflowHistoryFromJSONFile(logger, file); err != nil {
				t.Errorf("replay %s: %v", file, err)
			}
		})
	}
}
