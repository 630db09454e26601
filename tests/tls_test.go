package tests

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/devserver"
)

// The names in the test PKI's certificates.
const (
	tlsServerName = "temporal.test"   // the frontend's certificate
	tlsGatehouse  = "gatehouse"       // Gatehouse's client certificate
	tlsSystem     = "temporal-system" // the server's own worker service
	tlsAPIKeyEnv  = "GATEHOUSE_TEST_TEMPORAL_API_KEY"
	tlsGoodKey    = "test-api-key-7f3a"
)

// testPKI is a CA and the certificates it signed, as files and as parsed
// pairs.
type testPKI struct {
	caFile, certFile, keyFile string // Gatehouse's side
	pool                      *x509.CertPool
	server, system            tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gatehouse test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, dns []string, ips []net.IP) (tls.Certificate, []byte, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			DNSNames: dns, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return pair, certPEM, keyPEM
	}
	p.server, _, _ = issue(2, tlsServerName, x509.ExtKeyUsageServerAuth, []string{tlsServerName}, []net.IP{net.ParseIP("127.0.0.1")})
	p.system, _, _ = issue(3, tlsSystem, x509.ExtKeyUsageClientAuth, nil, nil)
	_, certPEM, keyPEM := issue(4, tlsGatehouse, x509.ExtKeyUsageClientAuth, nil, nil)
	p.caFile, p.certFile, p.keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	for path, data := range map[string][]byte{
		p.caFile:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		p.certFile: certPEM,
		p.keyFile:  keyPEM,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// keyCheck is the cluster's API-key authentication, as a Temporal Cloud
// namespace's: a call is allowed with the right bearer key, or from the
// server's own certificate. It also records, for every call Gatehouse's
// certificate makes, the authorization header it carried.
type keyCheck struct {
	key string

	mu      sync.Mutex
	headers map[string]int // authorization header → calls from Gatehouse
}

func (k *keyCheck) GetClaims(info *authorization.AuthInfo) (*authorization.Claims, error) {
	claims := &authorization.Claims{}
	if info.TLSSubject != nil {
		claims.Subject = info.TLSSubject.CommonName
	}
	if claims.Subject == tlsSystem || info.AuthToken == "Bearer "+k.key {
		claims.System = authorization.RoleAdmin
	}
	return claims, nil
}

func (k *keyCheck) Authorize(_ context.Context, caller *authorization.Claims, _ *authorization.CallTarget) (authorization.Result, error) {
	if caller != nil && caller.System == authorization.RoleAdmin {
		return authorization.Result{Decision: authorization.DecisionAllow}, nil
	}
	return authorization.Result{Decision: authorization.DecisionDeny, Reason: "no valid API key"}, nil
}

// record is a frontend interceptor that runs before the authorizer looks.
func (k *keyCheck) record(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 &&
			ti.State.PeerCertificates[0].Subject.CommonName == tlsGatehouse {
			md, _ := metadata.FromIncomingContext(ctx)
			k.mu.Lock()
			k.headers[strings.Join(md.Get("authorization"), ",")]++
			k.mu.Unlock()
		}
	}
	return next(ctx, req)
}

func (k *keyCheck) seen() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := map[string]int{}
	for h, n := range k.headers {
		out[h] = n
	}
	return out
}

// startTLSServer starts the in-process Temporal server serving its frontend
// over TLS, requiring a client certificate from the test CA, and checking
// the API key.
func startTLSServer(t *testing.T, pki *testPKI, keys *keyCheck) *devserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{
		DataDir: t.TempDir(), FrontendAddr: "127.0.0.1:0",
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)),
		TLS: &devserver.TLS{
			Server: &tls.Config{
				Certificates: []tls.Certificate{pki.server},
				ClientCAs:    pki.pool, ClientAuth: tls.RequireAndVerifyClientCert,
				MinVersion: tls.VersionTLS12,
			},
			Client: &tls.Config{
				Certificates: []tls.Certificate{pki.system},
				RootCAs:      pki.pool, ServerName: tlsServerName,
				MinVersion: tls.VersionTLS12,
			},
		},
		ServerOptions: []temporal.ServerOption{
			temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return keys }),
			temporal.WithAuthorizer(keys),
			temporal.WithChainedFrontendGrpcInterceptors(keys.record),
		},
	})
	if err != nil {
		t.Fatalf("start temporal with TLS: %v", err)
	}
	t.Cleanup(func() { srv.Stop() }) //nolint:errcheck // the test is over
	return srv
}

// TestTLSAndAPIKeyWorkerAndGatewayCompleteARun: the worker, the gateway,
// setup and runs --stuck reach a cluster that requires mTLS and an API key,
// all from the config's temporal block, and a run goes from plan to
// applied through them. Every call Gatehouse makes carries the key.
func TestTLSAndAPIKeyWorkerAndGatewayCompleteARun(t *testing.T) {
	pki := newTestPKI(t)
	keys := &keyCheck{key: tlsGoodKey, headers: map[string]int{}}
	srv := startTLSServer(t, pki, keys)
	t.Setenv(tlsAPIKeyEnv, tlsGoodKey)

	dir := t.TempDir()
	script, err := filepath.Abs("../examples/apply.sh")
	if err != nil {
		t.Fatal(err)
	}
	cfg := renderConfig(t, script, "1h", "http://127.0.0.1:9/unused") + fmt.Sprintf(`
temporal:
  api_key_env: %s
  tls: {cert_file: %q, key_file: %q, ca_file: %q, server_name: %s}
`, tlsAPIKeyEnv, pki.certFile, pki.keyFile, pki.caFile, tlsServerName)
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	applyLog := filepath.Join(dir, "applied.log")
	t.Setenv("APPLY_LOG", applyLog)
	t.Setenv(app.DatabaseEnv, "sqlite:"+filepath.Join(dir, "audit.db"))
	opts := app.Options{
		ConfigPath: cfgPath, DataDir: filepath.Join(dir, "data"),
		TemporalAddr: srv.FrontendAddr(), Namespace: srv.Namespace(),
		HTTPAddr: freeAddr(t), Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		SigningKeys: testSigningKey,
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// setup loads no config but the temporal block.
	if err := app.Setup(ctx, opts); err != nil {
		t.Fatalf("setup over TLS: %v", err)
	}

	runInProcess(t, app.RunWorker, opts)
	runInProcess(t, app.RunGateway, opts)
	s := &stack{t: t, url: "http://" + opts.HTTPAddr, applyLog: applyLog}
	waitReady(t, s.url)

	s.twoApprovalRun()
	if _, err := app.Stuck(ctx, opts, time.Hour, ""); err != nil {
		t.Errorf("runs --stuck over TLS: %v", err)
	}

	seen := keys.seen()
	if seen["Bearer "+tlsGoodKey] == 0 || len(seen) != 1 {
		t.Errorf("authorization headers of Gatehouse's calls: %v; want every call to carry Bearer %s", seen, tlsGoodKey)
	}
}

// TestTLSRefusesWhatCannotBeTrusted: each missing or wrong piece fails the
// dial with an error that says what is wrong; the right pieces together
// succeed (so the failures are owed to the piece taken away).
func TestTLSRefusesWhatCannotBeTrusted(t *testing.T) {
	pki := newTestPKI(t)
	keys := &keyCheck{key: tlsGoodKey, headers: map[string]int{}}
	srv := startTLSServer(t, pki, keys)
	good := app.TemporalConn{CertFile: pki.certFile, KeyFile: pki.keyFile, CAFile: pki.caFile, ServerName: tlsServerName, APIKey: tlsGoodKey}
	setup := app.Options{TemporalAddr: srv.FrontendAddr(), Namespace: srv.Namespace(), Temporal: good,
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Stuck queries Gatehouse's search attributes.
	if err := app.Setup(ctx, setup); err != nil {
		t.Fatalf("setup over TLS: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*app.TemporalConn)
		want string // in the error; "" for success
	}{
		{"everything right", func(*app.TemporalConn) {}, ""},
		{"without the CA", func(c *app.TemporalConn) { c.CAFile = "" }, "certificate signed by unknown authority"},
		{"without a client certificate", func(c *app.TemporalConn) { c.CertFile, c.KeyFile = "", "" }, "without a client certificate"},
		{"the wrong server name", func(c *app.TemporalConn) { c.ServerName = "other.test" }, "not other.test"},
		{"a wrong API key", func(c *app.TemporalConn) { c.APIKey = "test-api-key-wrong" }, "unauthorized"},
		{"plain gRPC", func(c *app.TemporalConn) { *c = app.TemporalConn{TLS: "false"} }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := good
			tc.edit(&conn)
			opts := app.Options{
				TemporalAddr: srv.FrontendAddr(), Namespace: srv.Namespace(), Temporal: conn,
				Logger: zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)),
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			_, err := app.Stuck(ctx, opts, time.Hour, "")
			switch {
			case tc.name == "plain gRPC":
				// A plain client gets no answer a TLS server would give.
				if err == nil {
					t.Error("a plain gRPC client listed runs of a TLS frontend")
				}
			case tc.want == "" && err != nil:
				t.Errorf("got %v; want success", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v; want an error saying %q", err, tc.want)
			}
		})
	}
}
