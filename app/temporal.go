package app

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"

	"go.temporal.io/sdk/client"

	"github.com/gatehouse-dev/gatehouse/config"
)

// TemporalConn is how a process reaches Temporal beyond address and
// namespace, as flags and the temporal CLI's environment variables give it
// (TEMPORAL_TLS_CERT, TEMPORAL_TLS_KEY, TEMPORAL_TLS_CA,
// TEMPORAL_TLS_SERVER_NAME, TEMPORAL_TLS, TEMPORAL_API_KEY). Each field
// set here wins over the config's temporal block; the certificate and its
// key count as one field, so they always come from the same place.
type TemporalConn struct {
	CertFile, KeyFile, CAFile, ServerName string
	// TLS is "" to follow the other settings, or a boolean ("true",
	// "false") that forces TLS on (system roots) or off.
	TLS string
	// APIKey is sent as "authorization: Bearer <key>" on every call; it
	// comes from the environment only, never a flag.
	APIKey string
}

// temporalSettings are the file's and the flags' settings merged.
type temporalSettings struct {
	certFile, keyFile, caFile, serverName string
	tls                                   bool
	apiKey                                string
}

// temporalFile is the temporal block the process dials with: from its
// loaded config, or, for setup and runs --stuck, which load no config, from
// the config file when it exists (only that block is read).
func (p *parts) temporalFile() (*config.Temporal, error) {
	if p.config != nil {
		return p.config.Temporal, nil
	}
	if p.opts.ConfigPath == "" {
		return nil, nil
	}
	if _, err := os.Stat(p.opts.ConfigPath); errors.Is(err, os.ErrNotExist) {
		// The default path (gatehouse.yaml) need not exist for setup;
		// flags and environment then say it all.
		return nil, nil
	}
	return config.LoadTemporal(p.opts.ConfigPath)
}

// mergeTemporal applies the flags' and environment's settings over the
// file's.
func mergeTemporal(file *config.Temporal, conn TemporalConn) (temporalSettings, error) {
	var s temporalSettings
	disabled := false
	fileTLS := false
	if file != nil {
		s.apiKey = file.APIKey
		if t := file.TLS; t != nil {
			s.certFile, s.keyFile, s.caFile, s.serverName = t.CertFile, t.KeyFile, t.CAFile, t.ServerName
			disabled, fileTLS = t.Disabled, !t.Disabled
		}
	}
	if conn.CertFile != "" || conn.KeyFile != "" {
		s.certFile, s.keyFile = conn.CertFile, conn.KeyFile
	}
	if conn.CAFile != "" {
		s.caFile = conn.CAFile
	}
	if conn.ServerName != "" {
		s.serverName = conn.ServerName
	}
	if conn.APIKey != "" {
		s.apiKey = conn.APIKey
	}
	forced := false
	if conn.TLS != "" {
		on, err := strconv.ParseBool(conn.TLS)
		if err != nil {
			return s, fmt.Errorf("TEMPORAL_TLS: %q is not true or false", conn.TLS)
		}
		disabled, forced = !on, on
	}
	switch {
	case s.certFile != "" && s.keyFile == "":
		return s, errors.New("temporal tls: a client certificate needs its key (--tls-key-path, TEMPORAL_TLS_KEY or temporal.tls.key_file)")
	case s.keyFile != "" && s.certFile == "":
		return s, errors.New("temporal tls: a client key needs its certificate (--tls-cert-path, TEMPORAL_TLS_CERT or temporal.tls.cert_file)")
	}
	material := s.certFile != "" || s.caFile != "" || s.serverName != ""
	if disabled {
		if material {
			return s, errors.New("temporal tls: disabled, yet certificate settings are given: remove one or the other")
		}
		return s, nil
	}
	// Temporal Cloud takes API keys over TLS only.
	s.tls = forced || fileTLS || material || s.apiKey != ""
	return s, nil
}

// temporalConnection sets opts' TLS and credentials for dialing addr. Files
// are read once, here: a renewed certificate takes a restart of the
// process (certificates are usually rolled with the pods).
func (p *parts) temporalConnection(opts *client.Options, addr string) error {
	file, err := p.temporalFile()
	if err != nil {
		return err
	}
	s, err := mergeTemporal(file, p.opts.Temporal)
	if err != nil {
		return err
	}
	if s.apiKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(s.apiKey)
	}
	if !s.tls {
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.serverName}
	if cfg.ServerName == "" {
		// What gRPC would check anyway; said here so that an error names it.
		if host, _, err := net.SplitHostPort(addr); err == nil {
			cfg.ServerName = host
		}
	}
	if s.caFile != "" {
		pem, err := os.ReadFile(s.caFile)
		if err != nil {
			return fmt.Errorf("temporal tls: read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("temporal tls: CA file %s holds no PEM certificate", s.caFile)
		}
		cfg.RootCAs = pool
	}
	if s.certFile != "" {
		pair, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
		if err != nil {
			return fmt.Errorf("temporal tls: client certificate %s with key %s: %w", s.certFile, s.keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	opts.ConnectionOptions.TLS = cfg
	return nil
}

// settingsError is a connection setting that cannot work (a missing file, a
// key without its certificate): retrying will not help.
type settingsError struct{ err error }

func (e settingsError) Error() string { return e.err.Error() }
func (e settingsError) Unwrap() error { return e.err }
