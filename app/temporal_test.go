package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/gatehouse-dev/gatehouse/config"
)

func TestMergeTemporalPrecedence(t *testing.T) {
	file := &config.Temporal{APIKey: "file-key", TLS: &config.TemporalTLS{
		CertFile: "/f/c.pem", KeyFile: "/f/c.key", CAFile: "/f/ca.pem", ServerName: "file.example",
	}}
	for _, tc := range []struct {
		name string
		file *config.Temporal
		conn TemporalConn
		want temporalSettings
		err  string
	}{
		{name: "nothing is plain gRPC", want: temporalSettings{}},
		{name: "the file alone", file: file, want: temporalSettings{
			certFile: "/f/c.pem", keyFile: "/f/c.key", caFile: "/f/ca.pem", serverName: "file.example", tls: true, apiKey: "file-key"}},
		{name: "env over file, the pair together", file: file,
			conn: TemporalConn{CertFile: "/e/c.pem", KeyFile: "/e/c.key", ServerName: "env.example", APIKey: "env-key"},
			want: temporalSettings{certFile: "/e/c.pem", keyFile: "/e/c.key", caFile: "/f/ca.pem", serverName: "env.example", tls: true, apiKey: "env-key"}},
		{name: "an API key implies TLS", conn: TemporalConn{APIKey: "k"}, want: temporalSettings{tls: true, apiKey: "k"}},
		{name: "unless disabled in the file", file: &config.Temporal{APIKey: "k", TLS: &config.TemporalTLS{Disabled: true}},
			want: temporalSettings{apiKey: "k"}},
		{name: "or by TEMPORAL_TLS", conn: TemporalConn{APIKey: "k", TLS: "false"}, want: temporalSettings{apiKey: "k"}},
		{name: "TEMPORAL_TLS=true over a disabled file", file: &config.Temporal{TLS: &config.TemporalTLS{Disabled: true}},
			conn: TemporalConn{TLS: "true"}, want: temporalSettings{tls: true}},
		{name: "an empty tls block is TLS with system roots", file: &config.Temporal{TLS: &config.TemporalTLS{}}, want: temporalSettings{tls: true}},
		{name: "a key without its cert", conn: TemporalConn{KeyFile: "/e/c.key"}, err: "needs its certificate"},
		{name: "a cert without its key", conn: TemporalConn{CertFile: "/e/c.pem"}, err: "needs its key"},
		{name: "disabled with a CA", conn: TemporalConn{CAFile: "/e/ca.pem", TLS: "false"}, err: "disabled"},
		{name: "TEMPORAL_TLS not a boolean", conn: TemporalConn{TLS: "yes please"}, err: "TEMPORAL_TLS"},
	} {
		got, err := mergeTemporal(tc.file, tc.conn)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v; want one saying %q", tc.name, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err == "" && got != tc.want:
			t.Errorf("%s: got %+v; want %+v", tc.name, got, tc.want)
		}
	}
}

// Files that cannot be used fail the dial with the file's name, before any
// connection is tried.
func TestTemporalConnectionRefusesUnusableFiles(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		conn TemporalConn
		want string
	}{
		{TemporalConn{CAFile: filepath.Join(dir, "missing.pem")}, "missing.pem"},
		{TemporalConn{CAFile: notPEM}, "holds no PEM certificate"},
		{TemporalConn{CertFile: notPEM, KeyFile: notPEM}, "client certificate " + notPEM},
	} {
		p := &parts{opts: Options{Temporal: tc.conn}}
		var opts client.Options
		err := p.temporalConnection(&opts, "temporal.example:7233")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v; want one naming %q", tc.conn, err, tc.want)
		}
	}
	p := &parts{opts: Options{Temporal: TemporalConn{APIKey: "k"}}}
	var opts client.Options
	if err := p.temporalConnection(&opts, "eu-west-1.aws.api.temporal.io:7233"); err != nil {
		t.Fatal(err)
	}
	if opts.Credentials == nil || opts.ConnectionOptions.TLS == nil || opts.ConnectionOptions.TLS.ServerName != "eu-west-1.aws.api.temporal.io" {
		t.Errorf("API key alone: credentials %v, tls %+v; want both, checking the address's host", opts.Credentials, opts.ConnectionOptions.TLS)
	}
}
