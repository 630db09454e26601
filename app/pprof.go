package app

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"go.uber.org/zap"
)

// startPprof serves Go's profiles (net/http/pprof) on addr, for finding
// where a process spends its time; "" serves nothing and returns nil. Only
// a loopback address is accepted: profiles show memory contents and
// command lines, and a CPU profile request costs the process 30 s of
// sampling, so they are for someone on the machine (ssh -L to reach them).
// The handlers get a mux of their own: the default mux is never served.
// It returns the address bound.
func startPprof(addr string, logger *zap.Logger) (*http.Server, net.Addr, error) {
	if addr == "" {
		return nil, nil, nil
	}
	if err := loopbackOnly(addr); err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // and the named profiles below it
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return serveOn(addr, "pprof", "/debug/pprof/", mux, logger)
}

// serveOn binds addr and serves h on it in the background: a listener of
// its own, apart from the gateway's. Binding first means a taken port
// fails the start. path is what the log line points at.
func serveOn(addr, what, path string, h http.Handler, logger *zap.Logger) (*http.Server, net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%s listen on %s: %w", what, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(what+" listener stopped", zap.Error(err))
		}
	}()
	logger.Info(what+" listening", zap.String("url", "http://"+ln.Addr().String()+path))
	return srv, ln.Addr(), nil
}

// loopbackOnly refuses an address that is not localhost or a loopback IP;
// an empty host would listen on every interface.
func loopbackOnly(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("--pprof-addr %q: want host:port: %w", addr, err)
	}
	if !loopback(addr) {
		return fmt.Errorf("--pprof-addr %q: only a loopback address (127.0.0.1, ::1, localhost) may serve profiles", addr)
	}
	return nil
}
