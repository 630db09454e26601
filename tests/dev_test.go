package tests

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/compression"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

// TestDevRestartKeepsRuns runs `gatehouse dev` as the binary does (embedded
// server on a SQLite file, Web UI, worker, gateway), stops it with a run
// half approved, starts it again on the same data dir and finishes the run.
func TestDevRestartKeepsRuns(t *testing.T) {
	dir := t.TempDir()
	script, err := filepath.Abs("../examples/apply.sh")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	hooks := newHookReceiver(t, "hook-secret")
	yaml := renderConfig(t, script, "1h", hooks.url)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	applyLog := filepath.Join(dir, "applied.log")
	t.Setenv("APPLY_LOG", applyLog)

	start := devStarter(t, cfgPath, filepath.Join(dir, "data"), "127.0.0.1:0")

	dev := start()
	// The CLI's client (gatehouse start) submits the plan.
	cli := gateway.Client{BaseURL: dev.HTTPURL(), Token: "t-alice"}
	run, err := cli.CreateRun(context.Background(), "prod-network", readPlan(t, "prod-network.json"), "via the CLI client", "")
	if err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	if run.Status != approval.StatusPendingApproval || !strings.HasSuffix(cli.RunURL(run), "/api/v1/workspaces/prod-network/runs/"+run.ID) {
		t.Fatalf("created %s %s at %s; want a pending run and its API URL", run.ID, run.Status, cli.RunURL(run))
	}
	_, err = cli.CreateRun(context.Background(), "nope", readPlan(t, "prod-network.json"), "", "")
	var apiErr *gateway.APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
		t.Errorf("CreateRun on an unknown workspace: %v; want a 404 APIError", err)
	}

	// The process compresses what it hands Temporal (read raw here).
	if enc := startInputEncoding(t, dev.TemporalAddr(), dev.Namespace(), run.ID); enc != compression.EncodingDict {
		t.Errorf("the run's start input is encoded %q in the history; want %q", enc, compression.EncodingDict)
	}

	s := &stack{t: t, url: dev.HTTPURL(), applyLog: applyLog}
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)

	// The Web UI is served beside the server.
	resp, err := http.Get(dev.UIURL())
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("web UI at %s: %v %v; want 200", dev.UIURL(), err, resp)
	}
	resp.Body.Close()

	// A run whose 3s deadline passes while the server is down.
	quick := s.createRun("quick", "t-alice", "add-only.json")
	if err := dev.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	time.Sleep(time.Until(quick.Deadline.Add(time.Second)))

	dev = start()
	defer dev.Close()
	s.url = dev.HTTPURL()
	// Its durable timer fires once the server is back: it fails closed.
	if got := s.waitFor(quick, approval.StatusTimedOut); got.Outcome != approval.OutcomeCancel {
		t.Errorf("quick run outcome %q; want cancel", got.Outcome)
	}
	if got := s.get(run); got.Status != approval.StatusPendingApproval || got.Reasons[0].Progress != "1/2" {
		t.Fatalf("after restart: %s %s; want pending at 1/2", got.Status, got.Reasons[0].Progress)
	}
	s.decide(run, "approve", "t-carol", nil, http.StatusOK)
	s.waitFor(run, approval.StatusApplied)
	if lines := s.applied(); len(lines) != 1 || !strings.Contains(lines[0], run.ID) {
		t.Errorf("apply log %q; want one line for %s", lines, run.ID)
	}
}

// devStarter returns a function that starts gatehouse dev on the config and
// data dir, on free ports (the Web UI on uiAddr, "" for none), each time
// on the same files.
func devStarter(t *testing.T, cfgPath, dataDir, uiAddr string) func() *app.Dev {
	return func() *app.Dev {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		d, err := app.StartDev(ctx, app.DevOptions{
			Options: app.Options{
				ConfigPath: cfgPath, DataDir: dataDir,
				TemporalAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
				Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
			},
			UIAddr: uiAddr,
		})
		if err != nil {
			t.Fatalf("start dev: %v", err)
		}
		return d
	}
}

// startInputEncoding reads a run's history through a client without any
// codec and says how its start input is encoded.
func startInputEncoding(t *testing.T, addr, namespace, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: addr, Namespace: namespace})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	iter := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for iter.HasNext() {
		e, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		if a := e.GetWorkflowExecutionStartedEventAttributes(); a != nil {
			return string(a.GetInput().GetPayloads()[0].GetMetadata()["encoding"])
		}
	}
	return ""
}
