package tests

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/server/temporaltest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/tracing"
	"github.com/gatehouse-dev/gatehouse/tracing/tracingtest"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// TestTraceAcrossGatewayTemporalAndActivities runs a worker and a gateway
// against a Temporal cluster with an OTLP endpoint set, creates a run with
// a caller's traceparent, approves and applies it, and checks what the
// in-process collector received once both processes stopped (and so
// flushed): one trace from the caller's request through the gateway's
// span, the SDK's StartWorkflow, the worker's RunWorkflow to the apply
// activity; the approvals in their own traces down to the Update; span
// names by route, the run id an attribute; the access log carrying the
// trace id.
func TestTraceAcrossGatewayTemporalAndActivities(t *testing.T) {
	collector := traceTo(t)

	dir, cfgPath, applyLog := writeConfig(t, exampleConfig(t))
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	opts := clusterOptions(t, ts, dir, cfgPath)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The gateway's access log, kept to look for the trace ids in it.
	core, accessLog := observer.New(zapcore.InfoLevel)
	workerOpts, gatewayOpts := opts, opts
	gatewayOpts.Logger = zap.New(core)
	procs := []*inProcess{runInProcess(t, app.RunWorker, workerOpts), runInProcess(t, app.RunGateway, gatewayOpts)}
	s := &stack{t: t, url: "http://" + opts.HTTPAddr, applyLog: applyLog}
	waitReady(t, s.url)

	const (
		createTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
		callerSpan  = "00f067aa0ba902b7"
		bobTrace    = "a0000000000000000000000000000b0b"
	)
	r := s.call("POST", "/api/v1/workspaces/prod-network/runs", "t-alice",
		map[string]any{"plan": readPlan(t, "prod-network.json"), "message": "traced"},
		"traceparent", "00-"+createTrace+"-"+callerSpan+"-01")
	if r.status != http.StatusCreated {
		t.Fatalf("create run: %d %s", r.status, r.body)
	}
	var run struct{ ID, Workspace string }
	r.decode(t, &run)
	path := "/api/v1/workspaces/prod-network/runs/" + run.ID
	if r := s.call("POST", path+"/approve", "t-bob", nil, "traceparent", "00-"+bobTrace+"-00000000000000b0-01"); r.status != http.StatusOK {
		t.Fatalf("approve by bob: %d %s", r.status, r.body)
	}
	if r := s.call("POST", path+"/approve", "t-carol", nil); r.status != http.StatusOK {
		t.Fatalf("approve by carol: %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got struct{ Status approval.Status }
		s.call("GET", path, "t-victor", nil).decode(t, &got)
		if got.Status == approval.StatusApplied {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s is %s; want applied", run.ID, got.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The RunWorkflow span ends with the workflow: wait for it to close.
	c, err := client.DialContext(ctx, client.Options{HostPort: ts.GetFrontendHostPort(), Namespace: ts.GetDefaultNamespace()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.GetWorkflow(ctx, run.ID, "").Get(ctx, nil); err != nil {
		t.Fatalf("run workflow: %v", err)
	}
	c.Close()

	// Stopped before the spans are read: stopping flushes them.
	for _, p := range procs {
		p.Stop(30 * time.Second)
	}

	spans := collector.Spans()
	t.Logf("%d spans exported", len(spans))
	inTrace := func(trace string) map[string]tracingtest.Span {
		m := map[string]tracingtest.Span{}
		for _, s := range spans {
			if s.TraceID == trace {
				m[s.Name] = s
			}
		}
		return m
	}
	for _, sp := range spans {
		if strings.Contains(sp.Name, run.ID) {
			t.Errorf("span name %q holds the run id", sp.Name)
		}
	}
	created := inTrace(createTrace)
	names := func(m map[string]tracingtest.Span) []string {
		var out []string
		for n := range m {
			out = append(out, n)
		}
		return out
	}
	post, ok := created["POST /api/v1/workspaces/:ws/runs"]
	if !ok {
		t.Fatalf("trace %s has spans %v; want the gateway's POST /api/v1/workspaces/:ws/runs", createTrace, names(created))
	}
	if post.ParentID != callerSpan || post.Resource["service.name"] != "gatehouse-gateway" ||
		post.Attributes["gatehouse.run_id"] != run.ID || post.Attributes["gatehouse.workspace"] != "prod-network" ||
		post.Attributes["http.response.status_code"] != "201" || post.Attributes["http.route"] != "/api/v1/workspaces/:ws/runs" {
		t.Errorf("gateway span %+v; want the caller's span as parent, service gatehouse-gateway, run %s in prod-network, status 201", post, run.ID)
	}
	for _, want := range []struct{ name, service string }{
		{"StartWorkflow:" + workflows.RunWorkflowName, "gatehouse-gateway"},
		{"RunWorkflow:" + workflows.RunWorkflowName, "gatehouse-worker"},
		{"StartActivity:Apply", "gatehouse-worker"},
		{"RunActivity:Apply", "gatehouse-worker"},
	} {
		sp, ok := created[want.name]
		if !ok {
			t.Errorf("trace %s lacks %s; has %v", createTrace, want.name, names(created))
			continue
		}
		if sp.Resource["service.name"] != want.service {
			t.Errorf("%s exported by %q; want %s", want.name, sp.Resource["service.name"], want.service)
		}
	}
	if sw := created["StartWorkflow:"+workflows.RunWorkflowName]; sw.ParentID != post.SpanID {
		t.Errorf("StartWorkflow's parent %s; want the gateway's span %s", sw.ParentID, post.SpanID)
	}
	if rw := created["RunWorkflow:"+workflows.RunWorkflowName]; rw.ParentID != created["StartWorkflow:"+workflows.RunWorkflowName].SpanID {
		t.Errorf("RunWorkflow's parent %s; want StartWorkflow", rw.ParentID)
	}

	approved := inTrace(bobTrace)
	appr, ok := approved["POST /api/v1/workspaces/:ws/runs/:id/approve"]
	if !ok || appr.Attributes["gatehouse.run_id"] != run.ID || appr.Attributes["enduser.id"] != "bob" {
		t.Errorf("bob's trace has %v (approve span %+v); want POST /api/v1/workspaces/:ws/runs/:id/approve of run %s by bob", names(approved), appr, run.ID)
	}
	var update bool
	for n, sp := range approved {
		if strings.HasPrefix(n, "UpdateWorkflow:") && sp.ParentID == appr.SpanID {
			update = true
		}
	}
	if !update {
		t.Errorf("bob's trace has %v; want an UpdateWorkflow span under the approve request", names(approved))
	}

	var logged bool
	for _, e := range accessLog.FilterMessage("http request").All() {
		f := e.ContextMap()
		if f["method"] == "POST" && strings.HasSuffix(f["uri"].(string), "/runs") {
			logged = f["trace_id"] == createTrace && f["span_id"] == post.SpanID
		}
	}
	if !logged {
		t.Errorf("the access log of the create has no trace_id %s and span_id %s", createTrace, post.SpanID)
	}
}

// traceTo points this test's processes at a new in-process collector, with
// no other OTEL_* setting of the environment in the way.
func traceTo(t *testing.T) *tracingtest.Collector {
	t.Helper()
	collector := tracingtest.Start(t)
	for _, k := range []string{tracing.EnvTracesEndpoint, tracing.EnvProtocol, tracing.EnvTracesProtocol,
		tracing.EnvExporter, tracing.EnvSDKDisabled, tracing.EnvServiceName, "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER"} {
		// Unset, not empty: the Temporal server refuses an empty
		// OTEL_TRACES_EXPORTER. t.Setenv restores the value afterwards.
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv(tracing.EnvEndpoint, collector.Endpoint())
	return collector
}

// TestDevTraces: gatehouse dev, all in one process, traces the same way
// and names itself gatehouse-dev; its spans are exported on Close.
func TestDevTraces(t *testing.T) {
	collector := traceTo(t)
	dir, cfgPath, _ := writeConfig(t, exampleConfig(t))
	dev := devStarter(t, cfgPath, filepath.Join(dir, "data"), "")()
	s := &stack{t: t, url: dev.HTTPURL()}
	const trace = "0123456789abcdef0123456789abcdef"
	r := s.call("POST", "/api/v1/workspaces/staging-app/runs", "t-alice",
		map[string]any{"plan": readPlan(t, "add-only.json")}, "traceparent", "00-"+trace+"-0123456789abcdef-01")
	if r.status != http.StatusCreated {
		t.Fatalf("create run: %d %s", r.status, r.body)
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, sp := range collector.Spans() {
		if sp.TraceID == trace {
			got[sp.Name] = sp.Resource["service.name"] + "/" + sp.Resource[string(tracing.RoleKey)]
		}
	}
	for _, name := range []string{"POST /api/v1/workspaces/:ws/runs", "StartWorkflow:" + workflows.RunWorkflowName} {
		if got[name] != "gatehouse-dev/dev" {
			t.Errorf("span %s from %q; want gatehouse-dev/dev (trace has %v)", name, got[name], got)
		}
	}
}
