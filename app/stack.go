package app

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/gatehouse-dev/gatehouse/starter"
)

// Stack is a worker and a gateway in one process against an external
// Temporal cluster: what `gatehouse worker` and `gatehouse gateway` run
// apart, together, for gatehouse bench --temporal-addr to measure a
// cluster as it measures the embedded server.
type Stack struct {
	parts *parts
	serving
}

// StartStack dials the cluster at opts.TemporalAddr, registers Gatehouse's
// search attributes on the namespace (as `gatehouse setup` does; a
// namespace the credentials may not change must have them already), and
// starts the worker and the gateway. It returns once both serve; on error
// nothing is left running.
func StartStack(ctx context.Context, opts Options) (_ *Stack, err error) {
	opts.defaults()
	if err := opts.checkWorker(); err != nil {
		return nil, err
	}
	p, err := connect(ctx, opts, "stack")
	if err != nil {
		return nil, err
	}
	s := &Stack{parts: p}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.Close())
		}
	}()
	if err := starter.RegisterSearchAttributes(ctx, p.client, opts.Namespace); err != nil {
		return nil, fmt.Errorf("search attributes (run gatehouse setup with an admin's credentials first): %w", err)
	}
	if err := p.serve(&s.serving); err != nil {
		return nil, err
	}
	return s, nil
}

// HTTPURL is the gateway's base URL.
func (s *Stack) HTTPURL() string { return "http://" + s.httpAddr }

// TemporalAddr is the cluster's frontend address.
func (s *Stack) TemporalAddr() string { return s.parts.opts.TemporalAddr }

// Namespace is the Temporal namespace runs live in.
func (s *Stack) Namespace() string { return s.parts.opts.Namespace }

// Close stops the gateway, then the worker, then the connection.
func (s *Stack) Close() error {
	var errs []error
	if s.http != nil {
		errs = append(errs, shutdownHTTP(s.http))
	}
	if s.worker != nil {
		s.worker.Stop()
	}
	s.parts.client.Close()
	s.parts.stopTracing()
	errs = append(errs, s.parts.closeAudit())
	return errors.Join(errs...)
}

// Dial returns a client of the cluster at opts.TemporalAddr with the
// connection settings every Gatehouse process uses (TLS and API key from
// the config's temporal block, flags and environment; no gzip on
// loopback), but none of a process's payload codec or interceptors: for a
// client that runs workflows of its own beside Gatehouse's.
func Dial(ctx context.Context, opts Options) (client.Client, error) {
	opts.defaults()
	p := &parts{opts: opts}
	if err := p.dial(ctx, opts.TemporalAddr); err != nil {
		return nil, err
	}
	return p.client, nil
}
