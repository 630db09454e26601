// Package tests runs Gatehouse end to end: a real Temporal server in process
// (temporaltest, SQLite in memory), the real worker with the real apply
// activity running a real script, and the gateway over real HTTP.
package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/server/temporaltest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/activities/audit"
	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/compression"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/encryption"
	"github.com/gatehouse-dev/gatehouse/gateway"
	"github.com/gatehouse-dev/gatehouse/internal/pgtest"
	"github.com/gatehouse-dev/gatehouse/plan"
	"github.com/gatehouse-dev/gatehouse/signing"
	"github.com/gatehouse-dev/gatehouse/starter"
	"github.com/gatehouse-dev/gatehouse/worker"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

const taskQueue = "gatehouse-e2e"

// testConfig is the config of the end-to-end tests. APPLY is replaced by the
// absolute path of the example apply script, TIMEOUT by the prod timeout.
const testConfig = `
users:
  - {id: alice, email: alice@example.com, groups: [platform], roles: [approver], token: t-alice}
  - {id: bob, email: bob@example.com, groups: [platform], roles: [approver], token: t-bob}
  - {id: carol, email: carol@example.com, groups: [platform], roles: [approver], token: t-carol}
  - {id: dave, email: dave@example.com, groups: [security], roles: [approver], token: t-dave}
  - {id: erin, email: erin@example.com, roles: [admin], token: t-erin}
  - {id: victor, email: victor@example.com, groups: [platform], roles: [viewer], token: t-victor}
  - {id: sam, email: sam@example.com, groups: [security], roles: [approver], token: t-sam}
  - {id: ci-bot, email: ci@example.com, source: local, automation: true, token: t-ci}
workspaces:
  - name: prod-network
    environment: production
    timeout: TIMEOUT
    on_timeout: cancel
    allow_bypass: true
    readers: {users: [sam]}
    supersede: false   # the tests keep several runs of it waiting at once
    apply: {command: [APPLY], dir: ".", env_from: [LOGVAR]}
    rules:
      - name: destroys-need-two
        when: {destroys_gt: 0}
        approvers: {groups: [platform]}
        min_approvals: 2
  - name: staging-app
    environment: staging
    apply: {command: [APPLY], dir: ".", env_from: [LOGVAR]}
  - name: other
    rules:
      - {name: anything, approvers: {users: [dave]}}
  - name: long
    timeout: 1h
    remind_every: 150ms
    apply: {command: [APPLY], dir: ".", env_from: [LOGVAR]}
    rules:
      - {name: platform-review, approvers: {groups: [platform]}, min_approvals: 2}
  - name: quick
    timeout: 3s
    on_timeout: cancel
    rules:
      - {name: anyone, approvers: {groups: [platform]}}
  - name: hooked
    environment: production
    notify: {webhook: {url: WEBHOOK, secret: hook-secret}}
    rules:
      - {name: one, approvers: {groups: [platform]}}
  - name: guarded
    environment: production
    policies: [POLICY]
    apply: {command: [APPLY], dir: ".", env_from: [LOGVAR]}
    rules:
      - {name: platform-review, approvers: {groups: [platform]}}
      - {name: finance-over-500, when: {monthly_cost_delta_gt: 500}, approvers: {users: [erin, dave]}}
  - name: staged
    apply: {command: [APPLY], dir: ".", env_from: [LOGVAR]}
    steps:
      - {name: apply-window, stage: pre_apply, approvers: {users: [dave]}}
      - {name: security-signoff, stage: post_apply, approvers: {groups: [security]}}
    rules:
      - {name: platform-review, approvers: {groups: [platform]}}
      - {name: security-review, approvers: {groups: [security]}}
`

// renderConfig fills testConfig's placeholders with absolute paths, so the
// config loads from any directory.
func renderConfig(t *testing.T, script, timeout, webhook string) string {
	t.Helper()
	policy, err := filepath.Abs("testdata/policies/guard.rego")
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer("LOGVAR", "APPLY_LOG", "APPLY", fmt.Sprintf("%q", script), "TIMEOUT", timeout, "WEBHOOK", webhook, "POLICY", fmt.Sprintf("%q", policy)).Replace(testConfig)
}

// stack is one Gatehouse: server, worker, gateway.
type stack struct {
	t        *testing.T
	temporal *temporaltest.TestServer
	hooks    *hookReceiver
	client   client.Client
	// payloads reads the payloads of the stack's histories.
	payloads converter.DataConverter
	acts     *activities.Activities
	worker   sdkworker.Worker
	url      string
	applyLog string
	runs     *starter.Client
	keys     *signing.Keys
	audit    *audit.Store
}

// testSigningKey is the key the tests' gateways and workers share.
const testSigningKey = "e2e-signing-key-e2e-signing-key-0123"

func testKeys(t *testing.T) *signing.Keys {
	t.Helper()
	k, err := signing.Parse(testSigningKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// runnerFor is the run workflow as a worker with cfg and keys registers it.
func runnerFor(cfg *config.Config, keys *signing.Keys) workflows.Runner {
	return workflows.Runner{Keys: keys, Verify: cfg.Verify}
}

type stackOptions struct {
	timeout    string // prod-network's approval timeout; default 1h
	maxWakeups int    // continue-as-new budget; default the workflow's
	// workspaces are more workspaces, as YAML list items at two spaces.
	workspaces string
	// gateway, when set, adjusts the gateway's options (the web UI's).
	gateway func(*gateway.Options)
	// postgres keeps the audit trail in PostgreSQL (the test is skipped
	// where there is none), not in a SQLite file.
	postgres bool
	// codec, when set, encrypts every payload the stack's client and
	// worker hand Temporal (after compressing it), and the gateway serves
	// both at /codec.
	codec *encryption.Codec
}

func newStack(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	if opts.timeout == "" {
		opts.timeout = "1h"
	}
	dir := t.TempDir()
	script, err := filepath.Abs("../examples/apply.sh")
	if err != nil {
		t.Fatal(err)
	}
	applyLog := filepath.Join(dir, "applied.log")
	// The apply activity passes its environment on to the script.
	t.Setenv("APPLY_LOG", applyLog)
	hooks := newHookReceiver(t, "hook-secret")
	yaml := renderConfig(t, script, opts.timeout, hooks.url) + opts.workspaces
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	s := stackFor(t, cfg, opts)
	s.applyLog, s.hooks = applyLog, hooks
	return s
}

// stackFor starts one Gatehouse for cfg: a Temporal server (temporaltest),
// the worker with the real activities on a data dir of its own, and the
// gateway over real HTTP. Every test stack is made here, whatever its
// config.
func stackFor(t *testing.T, cfg *config.Config, opts stackOptions) *stack {
	t.Helper()
	dir := t.TempDir()
	logger := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	ts := temporaltest.NewServer(temporaltest.WithT(t))
	// Payloads go through what a Gatehouse process's go through: the
	// stack's keys, if any, then compression.
	codec := compression.Chain{&compression.Codec{}}
	if opts.codec != nil {
		codec = compression.Chain{opts.codec, &compression.Codec{}}
	}
	c := ts.NewClientWithOptions(client.Options{Namespace: ts.GetDefaultNamespace(), DataConverter: codec.DataConverter()})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := starter.RegisterSearchAttributes(ctx, c, ts.GetDefaultNamespace()); err != nil {
		t.Fatal(err)
	}
	store, err := plan.NewStore(filepath.Join(dir, "plans"))
	if err != nil {
		t.Fatal(err)
	}
	claims, err := activities.NewClaimStore(filepath.Join(dir, "claims"))
	if err != nil {
		t.Fatal(err)
	}
	locks, err := activities.NewLockStore(filepath.Join(dir, "locks"))
	if err != nil {
		t.Fatal(err)
	}
	driver, dsn := audit.DriverSQLite, filepath.Join(dir, "audit.db")
	if opts.postgres {
		driver, dsn = audit.DriverPostgres, pgtest.DSN(t)
	}
	trail, err := audit.Open(context.Background(), driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	s := &stack{
		t: t, temporal: ts, client: c, audit: trail, payloads: codec.DataConverter(),
		acts: &activities.Activities{Config: cfg, Plans: store, Claims: claims, Locks: locks, Temporal: c,
			Work: filepath.Join(dir, "work"), Notifier: activities.LogNotifier{Logger: logger}, Logger: logger, Audit: trail},
	}
	s.keys = testKeys(t)
	s.startWorker()
	runs := starter.New(c, ts.GetDefaultNamespace(), taskQueue, cfg, s.keys)
	runs.MaxWakeups = opts.maxWakeups
	runs.LockRetry = 200 * time.Millisecond
	s.runs = runs
	gopts := gateway.Options{
		Config: cfg,
		Runs:   runs,
		Plans:  store,
		Logger: logger,
		Audit:  trail,
		Codec:  codec,
		Health: func(ctx context.Context) error {
			_, err := c.CheckHealth(ctx, &client.CheckHealthRequest{})
			return err
		},
	}
	if opts.gateway != nil {
		opts.gateway(&gopts)
	}
	srv := httptest.NewServer(gateway.New(gopts))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *stack) startWorker() {
	s.t.Helper()
	s.worker = worker.New(s.client, taskQueue, runnerFor(s.acts.Config, s.keys), s.acts, sdkworker.Options{})
	if err := s.worker.Start(); err != nil {
		s.t.Fatalf("start worker: %v", err)
	}
	w := s.worker
	s.t.Cleanup(w.Stop)
}

// response is an HTTP answer with its JSON body kept raw.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) errorMessage(t *testing.T) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	r.decode(t, &e)
	if e.Error == "" {
		t.Fatalf("body %s has no \"error\"", r.body)
	}
	return e.Error
}

// call sends a request; body is JSON-encoded unless it is a string or []byte.
func (s *stack) call(method, path, token string, body any, headers ...string) response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

func readPlan(t *testing.T, name string) json.RawMessage {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("../examples/plans", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// createRun submits a plan as token's user and returns the new run.
func (s *stack) createRun(ws, token, planFile string) gateway.RunView {
	s.t.Helper()
	r := s.call("POST", "/api/v1/workspaces/"+ws+"/runs", token, map[string]any{"plan": readPlan(s.t, planFile), "message": "e2e"})
	if r.status == http.StatusAccepted {
		// Started but not read (a worker stopped, or Temporal failing a
		// query under load): look, as the API says, rather than submit
		// again.
		s.t.Logf("create run: %d %s; reading %s", r.status, r.body, r.header.Get("Location"))
		return s.readStarted(token, r.header.Get("Location"))
	}
	if r.status != http.StatusCreated {
		s.t.Fatalf("create run: %d %s", r.status, r.body)
	}
	var run gateway.RunView
	r.decode(s.t, &run)
	return run
}

// readStarted reads the run a create answered 202 for, until a worker has
// it (30 s at most).
func (s *stack) readStarted(token, location string) gateway.RunView {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := s.call("GET", strings.TrimPrefix(location, s.url), token, nil)
		if r.status == http.StatusOK {
			var run gateway.RunView
			r.decode(s.t, &run)
			return run
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("read the started run %s: %d %s", location, r.status, r.body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *stack) runPath(run gateway.RunView) string {
	return "/api/v1/workspaces/" + run.Workspace + "/runs/" + run.ID
}

func (s *stack) get(run gateway.RunView) gateway.RunView {
	s.t.Helper()
	r := s.call("GET", s.runPath(run), "t-victor", nil)
	if r.status != http.StatusOK {
		s.t.Fatalf("get run: %d %s", r.status, r.body)
	}
	var out gateway.RunView
	r.decode(s.t, &out)
	return out
}

// decide posts a decision and insists on the status it expects.
func (s *stack) decide(run gateway.RunView, action, token string, body any, want int, headers ...string) response {
	s.t.Helper()
	r := s.call("POST", s.runPath(run)+"/"+action, token, body, headers...)
	if r.status != want {
		s.t.Fatalf("%s by %s: got %d %s; want %d", action, token, r.status, r.body, want)
	}
	return r
}

// waitFor polls the run until it reaches status, failing after 30 s.
func (s *stack) waitFor(run gateway.RunView, status approval.Status) gateway.RunView {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := s.get(run)
		if got.Status == status {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("run %s is %s; want %s", run.ID, got.Status, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// twoApprovalRun is the whole run of a deployment test: alice submits a
// destroying plan to prod-network, bob and carol approve it, it applies
// exactly once (the only run in the apply log) and the audit trail ends
// with the apply.
func (s *stack) twoApprovalRun() gateway.RunView {
	s.t.Helper()
	run := s.createRun("prod-network", "t-alice", "prod-network.json")
	s.decide(run, "approve", "t-bob", nil, http.StatusOK)
	s.decide(run, "approve", "t-carol", nil, http.StatusOK)
	s.waitFor(run, approval.StatusApplied)
	if lines := s.applied(); len(lines) != 1 {
		s.t.Errorf("apply ran %d times; want once", len(lines))
	}
	s.trail(run, "t-victor", approval.AuditApplied)
	return run
}

// applied returns the lines the apply script wrote.
func (s *stack) applied() []string {
	s.t.Helper()
	data, err := os.ReadFile(s.applyLog)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// hookReceiver is a webhook endpoint that checks each delivery's signature
// as a real receiver would and keeps the events it accepted.
type hookReceiver struct {
	url      string
	secret   string
	mu       sync.Mutex
	accepted []activities.Event
	bad      int
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	h := &hookReceiver{secret: secret}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err := activities.VerifyWebhook(h.secret, r.Header, body, time.Minute, time.Now()); err != nil {
			h.bad++
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var e activities.Event
		if err := json.Unmarshal(body, &e); err != nil {
			h.bad++
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		h.accepted = append(h.accepted, e)
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

func (h *hookReceiver) events(runID string) []activities.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []activities.Event
	for _, e := range h.accepted {
		if e.RunID == runID {
			out = append(out, e)
		}
	}
	return out
}
