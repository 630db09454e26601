package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/devserver"
	"github.com/gatehouse-dev/gatehouse/starter"
)

// DevOptions configures the all-in-one dev process.
type DevOptions struct {
	Options
	UIAddr string // Temporal Web UI; "" disables it
}

// Dev is Gatehouse in one process: an embedded Temporal server on a SQLite
// file with its Web UI, the worker and the gateway.
type Dev struct {
	server *devserver.Server
	parts  *parts
	serving
	pprof   *http.Server // nil unless PprofAddr is set
	metrics *http.Server // nil unless MetricsAddr is set
	lock    *dataDirLock // held from the first touch of the data dir to the end of Close
}

// StartDev starts every part and returns once all of them serve. On error
// nothing is left running.
func StartDev(ctx context.Context, opts DevOptions) (_ *Dev, err error) {
	opts.defaults()
	// First of all: loadParts already creates plans/ in the data dir.
	lock, err := lockDataDir(opts.DataDir)
	if err != nil {
		return nil, err
	}
	p, err := loadParts(opts.Options)
	if err != nil {
		_ = lock.release()
		return nil, err
	}
	p.dev = true
	d := &Dev{parts: p, lock: lock}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if err := p.loadKeys(opts.DataDir); err != nil {
		return nil, err
	}
	if d.pprof, _, err = startPprof(opts.PprofAddr, opts.Logger); err != nil {
		return nil, err
	}
	if err := p.openAudit(ctx, opts.DataDir); err != nil {
		return nil, err
	}
	if err := p.openMetrics(); err != nil {
		return nil, err
	}
	if d.metrics, _, err = p.serveMetrics(); err != nil {
		return nil, err
	}
	d.server, err = devserver.Start(ctx, devserver.Options{
		DataDir:      opts.DataDir,
		FrontendAddr: opts.TemporalAddr,
		UIAddr:       opts.UIAddr,
		// Payloads are compressed (and maybe encrypted): the UI reads them
		// through the gateway's codec.
		CodecEndpoint: codecEndpoint(opts.HTTPAddr),
		Namespace:     opts.Namespace,
		Retention:     opts.Retention,
		Logger:        opts.Logger.Named("temporal-server"),
	})
	if err != nil {
		return nil, fmt.Errorf("start temporal: %w", err)
	}
	if err := p.startTracing(ctx, "dev"); err != nil {
		return nil, err
	}
	if err := p.dial(ctx, d.server.FrontendAddr()); err != nil {
		return nil, err
	}
	// Registered on every start, so a data dir made by an older Gatehouse
	// gains the attributes a newer one uses.
	if err := starter.RegisterSearchAttributes(ctx, p.client, opts.Namespace); err != nil {
		return nil, err
	}
	// Links in notices point at this process unless the config says
	// otherwise: the gateway's address and the embedded Web UI.
	if p.config.PublicURL == "" && opts.HTTPAddr != "" {
		p.config.PublicURL = "http://" + opts.HTTPAddr
	}
	if p.config.TemporalUIURL == "" {
		p.config.TemporalUIURL = d.server.UIURL()
	}
	if err := p.serve(&d.serving); err != nil {
		return nil, err
	}
	return d, nil
}

// serving is the worker and the gateway of a process that runs both.
type serving struct {
	worker   *applyingWorker
	http     *http.Server
	httpAddr string
}

// serve starts the worker, then the gateway, into s: what started is in s
// even when a later part fails, for the caller to stop.
func (p *parts) serve(s *serving) error {
	w, err := p.newWorker()
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	s.worker = w
	srv, addr, err := p.listenGateway()
	if err != nil {
		return err
	}
	s.http, s.httpAddr = srv, addr.String()
	return nil
}

// HTTPURL is the gateway's base URL.
func (d *Dev) HTTPURL() string { return "http://" + d.httpAddr }

// UIURL is the Temporal Web UI's base URL, "" when disabled.
func (d *Dev) UIURL() string { return d.server.UIURL() }

// TemporalAddr is the embedded frontend's gRPC address.
func (d *Dev) TemporalAddr() string { return d.server.FrontendAddr() }

// Namespace is the Temporal namespace runs live in.
func (d *Dev) Namespace() string { return d.parts.opts.Namespace }

// Close stops the parts in reverse order: no new requests, then no new work,
// then the server.
func (d *Dev) Close() error {
	var errs []error
	if d.http != nil {
		errs = append(errs, shutdownHTTP(d.http))
	}
	if d.metrics != nil {
		errs = append(errs, d.metrics.Close())
	}
	if d.pprof != nil {
		errs = append(errs, d.pprof.Close())
	}
	if d.worker != nil {
		d.worker.Stop()
	}
	if d.parts.client != nil {
		d.parts.client.Close()
	}
	d.parts.stopTracing()
	errs = append(errs, d.parts.closeAudit())
	if d.server != nil {
		errs = append(errs, d.server.Stop())
	}
	// Last: another dev process may take the data dir only once nothing
	// here writes to it.
	errs = append(errs, d.lock.release())
	return errors.Join(errs...)
}

// connect loads the config and dials the external Temporal cluster: the
// start of every process but dev. The caller closes p.client.
func connect(ctx context.Context, opts Options, role string) (*parts, error) {
	p, err := loadParts(opts)
	if err != nil {
		return nil, err
	}
	if err := p.loadKeys(""); err != nil {
		return nil, err
	}
	if err := p.openAudit(ctx, ""); err != nil {
		return nil, err
	}
	if err := p.openMetrics(); err != nil {
		_ = p.closeAudit()
		return nil, err
	}
	if err := p.startTracing(ctx, role); err != nil {
		_ = p.closeAudit()
		return nil, err
	}
	if err := p.dial(ctx, opts.TemporalAddr); err != nil {
		p.stopTracing()
		_ = p.closeAudit()
		return nil, err
	}
	return p, nil
}

// RunWorker runs a worker against an external Temporal cluster until ctx
// ends.
func RunWorker(ctx context.Context, opts Options) error {
	opts.defaults()
	if err := opts.checkWorker(); err != nil {
		return err
	}
	p, err := connect(ctx, opts, "worker")
	if err != nil {
		return err
	}
	defer p.stopTracing()
	defer p.client.Close()
	defer p.closeAudit() //nolint:errcheck // closing on the way out
	if m, _, err := p.serveMetrics(); err != nil {
		return err
	} else if m != nil {
		defer m.Close()
	}
	prof, _, err := startPprof(opts.PprofAddr, opts.Logger)
	if err != nil {
		return err
	}
	if prof != nil {
		defer prof.Close()
	}
	w, err := p.newWorker()
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	opts.Logger.Info("worker polling", zap.String("temporal", opts.TemporalAddr),
		zap.String("namespace", opts.Namespace), zap.Strings("task_queues", w.queues))
	<-ctx.Done()
	w.Stop()
	return nil
}

// RunGateway serves the gateway against an external Temporal cluster until
// ctx ends.
func RunGateway(ctx context.Context, opts Options) error {
	opts.defaults()
	p, err := connect(ctx, opts, "gateway")
	if err != nil {
		return err
	}
	defer p.stopTracing()
	defer p.client.Close()
	defer p.closeAudit() //nolint:errcheck // closing on the way out
	if m, _, err := p.serveMetrics(); err != nil {
		return err
	} else if m != nil {
		defer m.Close()
	}
	srv, addr, err := p.listenGateway()
	if err != nil {
		return err
	}
	opts.Logger.Info("gateway listening", zap.String("url", "http://"+addr.String()),
		zap.String("temporal", opts.TemporalAddr), zap.String("namespace", opts.Namespace))
	<-ctx.Done()
	return shutdownHTTP(srv)
}

// Stuck lists the runs of a Temporal namespace that have waited for people
// longer than olderThan (in workspace ws, or all when "").
func Stuck(ctx context.Context, opts Options, olderThan time.Duration, ws string) ([]starter.RunSummary, error) {
	opts.defaults()
	p := &parts{opts: opts}
	if err := p.dial(ctx, opts.TemporalAddr); err != nil {
		return nil, err
	}
	defer p.client.Close()
	return starter.New(p.client, opts.Namespace, opts.TaskQueue, nil, nil).ListStuck(ctx, olderThan, time.Now(), ws)
}

// checkWorker refuses worker settings the SDK would take silently.
func (o Options) checkWorker() error {
	if o.MaxConcurrentActivities < 0 || o.MaxConcurrentWorkflowTasks < 0 {
		return fmt.Errorf("worker: --max-concurrent-activities and --max-concurrent-workflow-tasks must not be negative")
	}
	for _, q := range o.Queues {
		if strings.TrimSpace(q) == "" || strings.TrimSpace(q) != q {
			return fmt.Errorf("worker: --queues: %q is not a task queue name", q)
		}
	}
	return nil
}

// codecEndpoint is the gateway's /codec as the embedded Web UI reaches it,
// or "" when the gateway's port is only picked once it listens (tests).
func codecEndpoint(httpAddr string) string {
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil || port == "" || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/codec"
}
