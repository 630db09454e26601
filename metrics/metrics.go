// Package metrics holds what Gatehouse's processes report to Prometheus:
// runs by status, decisions by channel and outcome, approval wait time,
// notifier failures, apply duration, HTTP latency by route, and the
// Temporal SDK's own metrics (through its OpenTelemetry handler into the
// same registry). A nil *Metrics records nothing, so callers need no
// checks.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	temporalotel "go.temporal.io/sdk/contrib/opentelemetry"
	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/approval"
)

// RunCounter counts runs by status: the audit trail's runs table, which
// knows every run, finished ones too.
type RunCounter interface {
	CountRuns(ctx context.Context) (map[approval.Status]int, error)
}

// Metrics is one process's registry and Gatehouse's instruments in it.
type Metrics struct {
	registry *prometheus.Registry
	provider *sdkmetric.MeterProvider
	logger   *zap.Logger

	httpDuration   *prometheus.HistogramVec
	decisions      *prometheus.CounterVec
	approvalWait   *prometheus.HistogramVec
	notifyFailures *prometheus.CounterVec
	applyDuration  *prometheus.HistogramVec
}

// New makes a registry with Gatehouse's instruments, Go's and the process's
// collectors, and a meter provider for the Temporal SDK that exports into
// it.
func New(logger *zap.Logger) (*Metrics, error) {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, fmt.Errorf("metrics: temporal exporter: %w", err)
	}
	m := &Metrics{
		registry: reg,
		provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)),
		logger:   logger,
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gatehouse_http_request_duration_seconds", Help: "HTTP requests by route, method and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method", "code"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_decisions_total", Help: "Decisions asked for, by kind, channel and outcome (accepted, or the refusal's code).",
		}, []string{"kind", "channel", "outcome"}),
		approvalWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gatehouse_approval_wait_seconds", Help: "From a reason's opening to the decision on it, by action.",
			Buckets: []float64{60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 259200},
		}, []string{"action"}),
		notifyFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_notify_failures_total", Help: "Notices a channel failed to deliver, by channel (slack, email, webhook, audit).",
		}, []string{"channel"}),
		applyDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gatehouse_apply_duration_seconds", Help: "Applies by result (applied, failed, outcome_unknown, stale_plan).",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.httpDuration, m.decisions, m.approvalWait, m.notifyFailures, m.applyDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return m, nil
}

// CountRuns adds the gauge of runs by status, read from counter at every
// scrape.
func (m *Metrics) CountRuns(counter RunCounter) error {
	if m == nil || counter == nil {
		return nil
	}
	return m.registry.Register(&runsCollector{counter: counter, logger: m.logger,
		desc: prometheus.NewDesc("gatehouse_runs", "Runs by status, from the audit trail.", []string{"status"}, nil)})
}

// Handler serves the registry in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// SDKHandler is the Temporal SDK's metrics handler, for client.Options.
func (m *Metrics) SDKHandler() client.MetricsHandler {
	if m == nil {
		return nil
	}
	return temporalotel.NewMetricsHandler(temporalotel.MetricsHandlerOptions{
		Meter: m.provider.Meter("temporal-sdk"),
		OnError: func(err error) {
			if m.logger != nil {
				m.logger.Warn("temporal sdk metric", zap.Error(err))
			}
		},
	})
}

// Close flushes and stops the SDK's meter provider.
func (m *Metrics) Close(ctx context.Context) error {
	if m == nil {
		return nil
	}
	return m.provider.Shutdown(ctx)
}

// HTTP records one request.
func (m *Metrics) HTTP(route, method string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.httpDuration.WithLabelValues(route, method, fmt.Sprint(code)).Observe(d.Seconds())
}

// Decision records a decision asked for and how it went.
func (m *Metrics) Decision(kind approval.DecisionKind, channel, outcome string) {
	if m == nil {
		return
	}
	m.decisions.WithLabelValues(string(kind), channel, outcome).Inc()
}

// Audited records what the trail's entries say that is worth a metric: how
// long approvers took.
func (m *Metrics) Audited(events []approval.AuditEvent) {
	if m == nil {
		return
	}
	for _, e := range events {
		switch e.Action {
		case approval.AuditApproved, approval.AuditRejected, approval.AuditChangesRequested, approval.AuditExternalDecision:
			if e.ResponseSeconds > 0 {
				m.approvalWait.WithLabelValues(string(e.Action)).Observe(e.ResponseSeconds)
			}
		}
	}
}

// NotifyFailure records a channel that failed a notice.
func (m *Metrics) NotifyFailure(channel string) {
	if m == nil {
		return
	}
	m.notifyFailures.WithLabelValues(channel).Inc()
}

// Apply records one apply.
func (m *Metrics) Apply(res approval.ApplyResult) {
	if m == nil || !res.Executed && res.Error == "" {
		return
	}
	result := "applied"
	switch {
	case res.StalePlan:
		result = "stale_plan"
	case res.OutcomeUnknown:
		result = "outcome_unknown"
	case res.Error != "" || res.ExitCode != 0:
		result = "failed"
	}
	var d time.Duration
	if !res.StartedAt.IsZero() && res.FinishedAt.After(res.StartedAt) {
		d = res.FinishedAt.Sub(res.StartedAt)
	}
	m.applyDuration.WithLabelValues(result).Observe(d.Seconds())
}

// runsCollector asks the trail how many runs are in each status when
// Prometheus scrapes.
type runsCollector struct {
	counter RunCounter
	logger  *zap.Logger
	desc    *prometheus.Desc
}

func (c *runsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *runsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.counter.CountRuns(ctx)
	if err != nil {
		if c.logger != nil {
			c.logger.Warn("metrics: runs by status", zap.Error(err))
		}
		return
	}
	for status, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), string(status))
	}
}
