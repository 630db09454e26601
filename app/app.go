// Package app assembles Gatehouse's parts into the processes the binary runs:
// the all-in-one dev process, a worker and a gateway against an external
// Temporal cluster. It holds no policy; cmd/gatehouse parses flags and calls
// it, and end-to-end tests start the same processes in-process.
package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	sdkworker "go.temporal.io/sdk/worker"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/activities"
	"github.com/gatehouse-dev/gatehouse/activities/audit"
	"github.com/gatehouse-dev/gatehouse/compression"
	"github.com/gatehouse-dev/gatehouse/config"
	"github.com/gatehouse-dev/gatehouse/encryption"
	"github.com/gatehouse-dev/gatehouse/gateway"
	"github.com/gatehouse-dev/gatehouse/metrics"
	"github.com/gatehouse-dev/gatehouse/plan"
	"github.com/gatehouse-dev/gatehouse/signing"
	"github.com/gatehouse-dev/gatehouse/starter"
	"github.com/gatehouse-dev/gatehouse/tracing"
	"github.com/gatehouse-dev/gatehouse/worker"
	"github.com/gatehouse-dev/gatehouse/workflows"
)

// Options are the settings every Gatehouse process shares.
type Options struct {
	ConfigPath   string // YAML config
	DataDir      string // plan store (and, for dev, the Temporal database)
	TemporalAddr string // host:port of the Temporal frontend
	Namespace    string // Temporal namespace
	// Temporal is TLS and the API key from flags and environment, over the
	// config's temporal block.
	Temporal  TemporalConn
	TaskQueue string // task queue of the run workflow
	HTTPAddr  string // gateway listen address
	// SigningKeys are the keys gateway and worker share (signing.EnvKeys:
	// comma-separated, the signing key first). Required by worker and
	// gateway; dev keeps a generated one in its data dir when unset.
	SigningKeys string
	// StopTimeout is how long a stopping worker waits for running applies
	// before it interrupts them. DefaultStopTimeout when 0.
	StopTimeout time.Duration
	// Retention is how long the namespace keeps closed workflows' histories
	// (setup and dev); DefaultRetention when 0.
	Retention time.Duration
	// MetricsAddr serves Prometheus metrics at /metrics (dev, worker,
	// gateway); "" serves and counts none.
	MetricsAddr string
	// PprofAddr serves net/http/pprof (dev and worker), loopback only; ""
	// serves none.
	PprofAddr string
	// Queues are the task queues a worker polls: nil polls TaskQueue and
	// every workspace's own (Config.TaskQueues), so one worker runs
	// everything; a list confines the worker to those queues (dedicated
	// workers for the workspaces whose credentials only they hold).
	Queues []string
	// MaxConcurrentActivities and MaxConcurrentWorkflowTasks bound what a
	// worker runs at once on each queue it polls (plans, applies and
	// notices; workflow tasks); 0 keeps the Temporal SDK's defaults.
	MaxConcurrentActivities    int
	MaxConcurrentWorkflowTasks int
	Logger                     *zap.Logger
}

// DefaultRetention keeps finished runs' histories a month for operators to
// inspect in the Temporal Web UI; the audit trail keeps the record for good.
const DefaultRetention = 30 * 24 * time.Hour

// DefaultStopTimeout lets most applies finish when a worker is stopped (a
// deploy, a node drain) instead of interrupting them.
const DefaultStopTimeout = 10 * time.Minute

func (o *Options) defaults() {
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.TaskQueue == "" {
		o.TaskQueue = worker.DefaultTaskQueue
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
}

// parts are the pieces a process is built from.
type parts struct {
	opts Options
	// keys sign (gateway) and verify (worker) what reaches the run
	// workflow.
	keys   *signing.Keys
	config *config.Config
	plans  *plan.Store
	client client.Client

	// approvalKey signs approvals (gateway); nil when none is configured.
	approvalKey ed25519.PrivateKey
	// audit keeps the audit trail (worker writes, gateway reads); nil when
	// the process has no database.
	audit *audit.Store
	// dev marks the parts of gatehouse dev.
	dev bool
	// codec is what the payloads this process hands Temporal go through:
	// encryption when GATEHOUSE_PAYLOAD_KEYS is set, then compression.
	// Empty only in parts that never loaded a config (app.Dial's).
	codec compression.Chain
	// metrics counts what this process does; nil when it serves none.
	metrics *metrics.Metrics
	// tracing exports this process's spans (app/tracing.go); nil or off
	// when no OTLP endpoint is set.
	tracing *tracing.Provider
}

// loadParts reads the config and opens the plan store: everything that can
// be wrong with the local setup is found before any server is started.
func loadParts(opts Options) (*parts, error) {
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings() {
		opts.Logger.Warn("config warning", zap.String("path", w.Path), zap.String("problem", w.Message))
	}
	// Tokens about to expire (or expired) are said at every start, where
	// operators look; plain dev tokens only by `config validate`, or every
	// dev start would repeat them.
	for _, w := range cfg.TokenWarnings(time.Now()) {
		if strings.HasSuffix(w.Path, ".token_expires") {
			opts.Logger.Warn("token expiry", zap.String("path", w.Path), zap.String("problem", w.Message))
		}
	}
	plans, err := plan.NewStore(filepath.Join(opts.DataDir, "plans"))
	if err != nil {
		return nil, err
	}
	opts.Logger.Info("config loaded", zap.String("path", opts.ConfigPath), zap.String("version", cfg.Version))
	p := &parts{opts: opts, config: cfg, plans: plans}
	if list := os.Getenv(encryption.EnvKeys); list != "" {
		// Every worker and gateway of a deployment needs the same keys.
		enc, err := encryption.Parse(list)
		if err != nil {
			return nil, err
		}
		p.codec = append(p.codec, enc)
		opts.Logger.Info("payloads encrypted", zap.String("codec", "AES-256-GCM"))
	}
	zip, err := payloadCompression(os.Getenv(EnvPayloadCompression))
	if err != nil {
		return nil, err
	}
	p.codec = append(p.codec, zip)
	return p, nil
}

// EnvPayloadCompression turns compressing payloads off ("off": they are
// written plain and still read compressed) for the step of an upgrade in
// which older processes, which cannot read them, still run. Unset or "on"
// compresses.
const EnvPayloadCompression = "GATEHOUSE_PAYLOAD_COMPRESSION"

func payloadCompression(v string) (*compression.Codec, error) {
	switch v {
	case "", "on":
		return &compression.Codec{}, nil
	case "off":
		return &compression.Codec{DecodeOnly: true}, nil
	}
	return nil, fmt.Errorf("%s=%q: want on or off", EnvPayloadCompression, v)
}

// loadKeys parses the shared signing keys; with none given and a dev data
// dir, it uses the one kept there, made on first start.
func (p *parts) loadKeys(devDataDir string) error {
	list := p.opts.SigningKeys
	if list == "" && devDataDir != "" {
		var err error
		if list, err = devSigningKey(devDataDir); err != nil {
			return err
		}
	}
	keys, err := signing.Parse(list)
	if err != nil {
		return err
	}
	p.keys = keys
	return p.loadApprovalKey(devDataDir)
}

// devSigningKey reads the dev data dir's signing key, creating it (mode
// 0600) on first use.
func devSigningKey(dir string) (string, error) {
	path := filepath.Join(dir, "signing.key")
	if data, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(data)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read dev signing key: %w", err)
	}
	key, err := signing.Generate()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create data dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write dev signing key: %w", err)
	}
	return key, nil
}

// loopback reports whether host:port names this machine's loopback.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// runner is the run workflow as this worker registers it: with the keys
// that verify the gateway's signatures and its config's check of actors.
func (p *parts) runner() workflows.Runner {
	return workflows.Runner{Keys: p.keys, Verify: p.config.Verify}
}

// dial connects to Temporal at addr.
func (p *parts) dial(ctx context.Context, addr string) error {
	p.opts.TemporalAddr = addr
	opts := client.Options{
		HostPort:  addr,
		Namespace: p.opts.Namespace,
		Logger:    sdkLogger{p.opts.Logger.Named("temporal-sdk").Sugar()},
	}
	if len(p.codec) > 0 {
		opts.DataConverter = p.codec.DataConverter()
	}
	if p.metrics != nil {
		opts.MetricsHandler = p.metrics.SDKHandler()
	}
	var err error
	if opts.Interceptors, err = p.clientInterceptors(); err != nil {
		return err
	}
	// dev dials its own embedded server, which speaks plain gRPC.
	if !p.dev {
		if err := p.temporalConnection(&opts, addr); err != nil {
			return settingsError{err}
		}
	}
	if loopback(addr) && opts.ConnectionOptions.TLS == nil {
		// Compressing what never leaves the machine (gatehouse dev's
		// embedded server) only costs CPU: gzip was about 6% of a dev
		// process's CPU under load.
		opts.ConnectionOptions.GrpcCompression = &client.GrpcCompressionNone{}
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		if t := opts.ConnectionOptions.TLS; t != nil && len(t.Certificates) == 0 {
			// A server that requires mTLS ends the handshake of a client
			// without a certificate, which the client mostly sees as a
			// broken pipe or a reset connection: say what may be missing.
			return fmt.Errorf("connect to temporal at %s over TLS without a client certificate (if the cluster requires mTLS, set temporal.tls.cert_file and key_file): %w", addr, err)
		}
		return fmt.Errorf("connect to temporal at %s: %w", addr, err)
	}
	p.client = c
	return nil
}

// newWorker returns the worker, its apply claims kept beside the plans so
// that every worker sharing the data dir sees them.
func (p *parts) newWorker() (*applyingWorker, error) {
	claims, err := activities.NewClaimStore(filepath.Join(p.opts.DataDir, "claims"))
	if err != nil {
		return nil, err
	}
	locks, err := activities.NewLockStore(filepath.Join(p.opts.DataDir, "locks"))
	if err != nil {
		return nil, err
	}
	acts := &activities.Activities{
		Config:   p.config,
		Plans:    p.plans,
		Notifier: activities.LogNotifier{Logger: p.opts.Logger.Named("notify")},
		Audit:    p.auditSink(),
		Metrics:  p.metrics,
		Logger:   p.opts.Logger.Named("activities"),
		Claims:   claims,
		Locks:    locks,
		Temporal: p.client,
		Work:     filepath.Join(p.opts.DataDir, "work"),
		// Links into the Temporal Web UI name the namespace runs live in.
		Namespace: p.opts.Namespace,
	}
	queues := p.opts.Queues
	if len(queues) == 0 {
		queues = p.config.TaskQueues(p.opts.TaskQueue)
	}
	aw := &applyingWorker{claims: claims, stopTimeout: p.opts.StopTimeout, logger: p.opts.Logger}
	for _, q := range queues {
		aw.workers = append(aw.workers, worker.New(p.client, q, p.runner(), acts, sdkworker.Options{
			WorkerStopTimeout:                      p.opts.StopTimeout,
			MaxConcurrentActivityExecutionSize:     p.opts.MaxConcurrentActivities,
			MaxConcurrentWorkflowTaskExecutionSize: p.opts.MaxConcurrentWorkflowTasks,
		}))
	}
	aw.queues = queues
	return aw, nil
}

// payloadCodec is the codec as the gateway serves it: no codec must be a
// nil interface.
func (p *parts) payloadCodec() converter.PayloadCodec {
	if len(p.codec) == 0 {
		return nil
	}
	return p.codec
}

// auditSink is the worker's audit store as the activities take it: a nil
// store must stay a nil interface, or the activities would write to it.
func (p *parts) auditSink() activities.AuditSink {
	if p.audit == nil {
		return nil
	}
	return p.audit
}

// applyingWorker is the SDK worker with a Stop that lets running applies end
// properly.
type applyingWorker struct {
	// workers are one SDK worker per polled task queue, sharing the
	// activities (and so the apply claims).
	workers     []sdkworker.Worker
	queues      []string
	claims      *activities.ClaimStore
	stopTimeout time.Duration
	logger      *zap.Logger
}

// Stop stops taking work and waits for the applies that run. What the SDK's
// Stop does (go.temporal.io/sdk v1.50.0, internal/internal_worker_base.go
// baseWorker.Stop): it closes the stop channel, so pollers stop taking
// tasks, and waits up to WorkerStopTimeout for the running ones; their
// contexts stay alive meanwhile, so an apply keeps running and heartbeating
// and can report its result. Past the timeout it cancels the worker's root
// context, which every activity context derives from — the apply then gets
// SIGINT and, after its grace period, SIGKILL — and returns at once,
// without waiting for the activities to return. So this waits on, through
// the grace period, for every apply to record its outcome on its claim
// before the process may exit: exiting earlier would stop the apply by the
// worker's death (Pdeathsig) instead, with no outcome recorded.
func (w *applyingWorker) Stop() {
	w.logger.Info("worker stopping: no new work; waiting for running applies", zap.Duration("stop_timeout", w.stopTimeout))
	// In parallel: each SDK worker's Stop waits up to the stop timeout for
	// its running tasks, and a deploy should not wait that once per queue.
	var wg sync.WaitGroup
	for _, sw := range w.workers {
		wg.Go(sw.Stop)
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), activities.DefaultGrace+10*time.Second)
	defer cancel()
	if !w.claims.Wait(ctx) {
		w.logger.Error("worker stopped with applies still running: they are interrupted as it exits, their outcome unrecorded")
	}
}

// Start starts polling every queue; if one cannot start, those already
// started are stopped again.
func (w *applyingWorker) Start() error {
	for i, sw := range w.workers {
		if err := sw.Start(); err != nil {
			for _, started := range w.workers[:i] {
				started.Stop()
			}
			return fmt.Errorf("task queue %s: %w", w.queues[i], err)
		}
	}
	return nil
}

// listenGateway binds the gateway's address and serves it in the
// background. Binding first means a taken port fails the start, not later.
func (p *parts) listenGateway() (*http.Server, net.Addr, error) {
	ln, err := net.Listen("tcp", p.opts.HTTPAddr)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway listen on %s: %w", p.opts.HTTPAddr, err)
	}
	runs := starter.New(p.client, p.opts.Namespace, p.opts.TaskQueue, p.config, p.keys)
	runs.Metrics = p.metrics
	srv := &http.Server{
		Handler: gateway.New(gateway.Options{
			Config: p.config,
			Runs:   runs,
			Plans:  p.plans,
			Logger: p.opts.Logger.Named("gateway"),
			Health: func(ctx context.Context) error {
				_, err := p.client.CheckHealth(ctx, &client.CheckHealthRequest{})
				return err
			},
			ApprovalKey: p.approvalKey,
			Audit:       p.audit,
			Codec:       p.payloadCodec(),
			Metrics:     p.metrics,
			// Every gateway sharing the signing keys shares the web UI's
			// sessions; gatehouse dev offers its user picker.
			SessionKey: p.keys.Derive("web-ui-session"),
			Dev:        p.dev,
			Namespace:  p.opts.Namespace,
			Tracing:    p.tracing,
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.opts.Logger.Error("gateway stopped", zap.Error(err))
		}
	}()
	return srv, ln.Addr(), nil
}

// shutdownHTTP gives in-flight requests a moment to finish.
func shutdownHTTP(srv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("shut down gateway: %w", err)
	}
	return nil
}

// sdkLogger routes the Temporal SDK's key-value logging into zap.
type sdkLogger struct{ s *zap.SugaredLogger }

func (l sdkLogger) Debug(msg string, kv ...any) { l.s.Debugw(msg, kv...) }
func (l sdkLogger) Info(msg string, kv ...any)  { l.s.Infow(msg, kv...) }
func (l sdkLogger) Warn(msg string, kv ...any)  { l.s.Warnw(msg, kv...) }
func (l sdkLogger) Error(msg string, kv ...any) { l.s.Errorw(msg, kv...) }
