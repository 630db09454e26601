package app

import (
	"net"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/metrics"
)

// openMetrics makes the process's metrics when it serves them (MetricsAddr
// set); without, nothing is counted.
func (p *parts) openMetrics() error {
	if p.opts.MetricsAddr == "" {
		return nil
	}
	m, err := metrics.New(p.opts.Logger.Named("metrics"))
	if err != nil {
		return err
	}
	p.metrics = m
	return nil
}

// serveMetrics serves /metrics on MetricsAddr, with the audit trail's runs
// by status when this process has the trail. Prometheus scrapes it from
// elsewhere, so any address may be given; keep it off the public network.
func (p *parts) serveMetrics() (*http.Server, net.Addr, error) {
	if p.metrics == nil {
		return nil, nil, nil
	}
	if p.audit != nil {
		if err := p.metrics.CountRuns(p.audit); err != nil {
			return nil, nil, err
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", p.metrics.Handler())
	return serveOn(p.opts.MetricsAddr, "metrics", "/metrics", mux, p.opts.Logger)
}
