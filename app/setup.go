package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/starter"
)

// Setup makes an external cluster ready for Gatehouse: it creates the
// namespace when missing, sets its retention (DefaultRetention when opts
// says none) and registers Gatehouse's search attributes. It is idempotent:
// a second run changes nothing.
func Setup(ctx context.Context, opts Options) error {
	_, err := SetupWait(ctx, opts, 0)
	return err
}

// SetupWait is Setup that keeps trying while Temporal does not answer yet,
// for up to wait, so that it can start together with the cluster (a compose
// stack, a Kubernetes Job) and exit 0 once instead of failing its first
// tries. Errors a retry cannot cure (a refused permission, a bad retention,
// an attribute of the wrong type) end it at once. It reports what it
// changed in the namespace.
func SetupWait(ctx context.Context, opts Options, wait time.Duration) (starter.NamespaceChange, error) {
	opts.defaults()
	if opts.Retention < starter.MinRetention {
		return starter.NamespaceChange{}, fmt.Errorf("retention %s: Temporal keeps closed workflows at least a day (24h)", opts.Retention)
	}
	deadline := time.Now().Add(wait)
	var change starter.NamespaceChange
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		got, err := setupOnce(ctx, opts)
		// A namespace created by an attempt that then failed to register
		// the attributes is still this run's doing.
		change.Created = change.Created || got.Created
		if change.RetentionFrom == 0 {
			change.RetentionFrom = got.RetentionFrom
		}
		if err == nil {
			return change, nil
		}
		// Right after creating the namespace, the attributes may be
		// refused for a few seconds (not every Temporal service knows the
		// namespace yet): that wait is owed to our own creation, not to
		// --wait.
		transient := retryable(err)
		if !transient || ctx.Err() != nil {
			return change, err
		}
		if !time.Now().Before(deadline) && !change.Created {
			if wait > 0 {
				return change, fmt.Errorf("setup: temporal at %s not ready within --wait %s: %w", opts.TemporalAddr, wait, err)
			}
			return change, err
		}
		opts.Logger.Info("temporal not ready for setup yet; retrying", zap.Int("attempt", attempt),
			zap.Duration("in", backoff), zap.Error(err))
		select {
		case <-ctx.Done():
			return change, fmt.Errorf("setup: gave up waiting for temporal at %s: %w", opts.TemporalAddr, errors.Join(ctx.Err(), err))
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// setupOnce is one attempt of SetupWait.
func setupOnce(ctx context.Context, opts Options) (starter.NamespaceChange, error) {
	// Bounded per attempt: a dial to a cluster that does not answer would
	// otherwise use up the whole wait in one try.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p := &parts{opts: opts}
	if err := p.dial(ctx, opts.TemporalAddr); err != nil {
		var bad settingsError
		if errors.As(err, &bad) {
			return starter.NamespaceChange{}, err // no wait cures a bad file
		}
		return starter.NamespaceChange{}, transientError{err}
	}
	defer p.client.Close()
	change, err := starter.EnsureNamespace(ctx, p.client, opts.Namespace, opts.Retention)
	if err != nil {
		return change, err
	}
	return change, starter.RegisterSearchAttributes(ctx, p.client, opts.Namespace)
}

// transientError marks a failure to reach Temporal at all, which the SDK
// does not always report as Unavailable.
type transientError struct{ err error }

func (e transientError) Error() string { return e.err.Error() }
func (e transientError) Unwrap() error { return e.err }

func retryable(err error) bool {
	var unreachable transientError
	return errors.As(err, &unreachable) || starter.Transient(err)
}
