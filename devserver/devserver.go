// Package devserver runs a single-process Temporal server, persisted in a
// SQLite file, plus the Temporal Web UI. It backs `gatehouse dev` and the
// end-to-end tests; it is not meant for production.
package devserver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/labstack/echo/v4"
	uiserver "github.com/temporalio/ui-server/v2/server"
	uiapi "github.com/temporalio/ui-server/v2/server/api"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	postgresplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/postgresql"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/common/rpc/encryption"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	dbFileName       = "temporal.db"
	defaultNamespace = "default"
	defaultRetention = 30 * 24 * time.Hour
	clusterName      = "active"

	// readyTimeout bounds Start when ctx has no deadline of its own, so a
	// server that never becomes healthy cannot hang the caller.
	readyTimeout = time.Minute

	// The frontend reports this gRPC health service as SERVING once the
	// workflow API accepts calls.
	workflowServiceHealthName = "temporal.api.workflowservice.v1.WorkflowService"
)

// Options configures the embedded server. Start validates it up front.
type Options struct {
	// DataDir holds the SQLite file, DataDir/temporal.db. It is created
	// (mode 0700) if missing. Required.
	DataDir string
	// FrontendAddr is the gRPC ip:port, e.g. "127.0.0.1:7233"; port "0" picks
	// a free port. "localhost" is accepted for 127.0.0.1. Required.
	FrontendAddr string
	// UIAddr is the Web UI ip:port, e.g. "127.0.0.1:8233"; "" disables the UI;
	// port "0" picks a free port.
	UIAddr string
	// CodecEndpoint, when set, is the codec server the Web UI decodes
	// payloads with (Gatehouse's gateway /codec), sending the browser's
	// cookies along: without one the UI shows compressed or encrypted
	// payloads as bytes.
	CodecEndpoint string
	// Namespace is created on first start. Default "default".
	Namespace string
	// Retention of closed workflows in Namespace, applied only when the
	// namespace is created. Default 30 days.
	Retention time.Duration
	// Logger receives the server's log at warn level and above. Required.
	Logger *zap.Logger

	// TLS serves the frontend over TLS; nil serves plain gRPC. Off by
	// default: for tests of clients against a TLS cluster.
	TLS *TLS
	// Postgres keeps Temporal in PostgreSQL, as production does, instead of
	// DataDir's SQLite file; DataDir is then not needed. The databases'
	// schemas must be set up (temporal-sql-tool, or its packages), and
	// Namespace is not created: create it through the API (gatehouse
	// setup), as against any cluster.
	Postgres *Postgres
	// ServerOptions are added after the server's own, so they win (tests:
	// an authorizer, frontend interceptors).
	ServerOptions []temporal.ServerOption
}

// TLS is the frontend's TLS.
type TLS struct {
	// Server is what the frontend serves with: Certificates, and for mTLS
	// ClientCAs with ClientAuth tls.RequireAndVerifyClientCert. Required.
	Server *tls.Config
	// Client is how the server's own clients (its worker service, Start's
	// readiness check) dial the frontend: RootCAs, and a certificate when
	// Server requires one. Required. Internal traffic between the services
	// stays plain: it never leaves the process's loopback listeners.
	Client *tls.Config
}

// Postgres names the two databases of a PostgreSQL persistence.
type Postgres struct {
	// Addr is host:port of the PostgreSQL server.
	Addr           string
	User, Password string
	// Database holds workflows, VisibilityDatabase their visibility
	// records (the server keeps them apart).
	Database, VisibilityDatabase string
	// ConnectAttributes are added to the connection URL (sslmode=...).
	ConnectAttributes map[string]string
}

// Server is a running dev server. Stop it with Stop.
type Server struct {
	namespace    string
	frontendAddr string
	uiURL        string
	// serverLog is the floor for the Temporal server's own log.
	serverLog zap.AtomicLevel
	// clientTLS dials the frontend when it serves TLS; nil otherwise.
	clientTLS *tls.Config

	temporal temporal.Server
	ui       *uiserver.Server
	uiDone   chan struct{} // closed when the UI goroutine returns

	stopOnce sync.Once
	stopErr  error
}

// startConfig is Options after validation and defaulting.
type startConfig struct {
	dbPath    string
	frontend  endpoint
	ui        *endpoint // nil: UI disabled
	codec     string
	namespace string
	retention time.Duration
	logger    *zap.Logger
	tls       *TLS
	postgres  *Postgres
	extra     []temporal.ServerOption
}

// sqlitePath is the SQLite file in dataDir.
func sqlitePath(dataDir string) (string, error) {
	if dataDir == "" {
		return "", errors.New("devserver: DataDir is required")
	}
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return "", fmt.Errorf("devserver: resolve DataDir %q: %w", dataDir, err)
	}
	// The sqlite plugin builds a "file:<path>?<params>" URI without escaping
	// the path, so these characters would be taken as URI syntax.
	if strings.ContainsAny(dir, "?#%") {
		return "", fmt.Errorf("devserver: DataDir %q must not contain '?', '#' or '%%'", dir)
	}
	return filepath.Join(dir, dbFileName), nil
}

func (o Options) validate() (startConfig, error) {
	var c startConfig
	var err error
	if o.Logger == nil {
		return c, errors.New("devserver: Logger is required")
	}
	c.logger = o.Logger
	c.tls, c.postgres, c.extra = o.TLS, o.Postgres, o.ServerOptions
	if o.TLS != nil && (o.TLS.Server == nil || o.TLS.Client == nil) {
		return c, errors.New("devserver: TLS needs both Server and Client")
	}
	if o.TLS != nil && o.UIAddr != "" {
		return c, errors.New("devserver: the Web UI is not served with TLS; set UIAddr to \"\"")
	}
	if p := o.Postgres; p != nil {
		if p.Addr == "" || p.User == "" || p.Database == "" || p.VisibilityDatabase == "" {
			return c, errors.New("devserver: Postgres needs Addr, User, Database and VisibilityDatabase")
		}
		if p.Database == p.VisibilityDatabase {
			return c, errors.New("devserver: Postgres Database and VisibilityDatabase must differ")
		}
	}

	if o.Postgres != nil {
		// Only for the log: the SQLite file is not used.
		c.dbPath = "postgres://" + o.Postgres.Addr + "/" + o.Postgres.Database
	} else if c.dbPath, err = sqlitePath(o.DataDir); err != nil {
		return c, err
	}

	if o.FrontendAddr == "" {
		return c, errors.New("devserver: FrontendAddr is required, e.g. 127.0.0.1:7233")
	}
	if c.frontend, err = parseEndpoint("devserver: FrontendAddr", o.FrontendAddr); err != nil {
		return c, err
	}
	if o.UIAddr != "" {
		ui, err := parseEndpoint("devserver: UIAddr", o.UIAddr)
		if err != nil {
			return c, err
		}
		c.ui = &ui
	}
	c.codec = o.CodecEndpoint

	c.namespace = o.Namespace
	if c.namespace == "" {
		c.namespace = defaultNamespace
	}
	c.retention = o.Retention
	switch {
	case c.retention == 0:
		c.retention = defaultRetention
	case c.retention < 0:
		return c, fmt.Errorf("devserver: Retention %v must not be negative", o.Retention)
	}
	return c, nil
}

// Start builds and starts the server, and the UI beside it. It returns once
// the frontend answers gRPC health checks and, with the UI enabled, once the
// UI answers a workflow list query that reached the frontend; or with an
// error, leaving nothing running, when ctx ends first. Without a deadline on
// ctx it waits at most one minute.
func Start(ctx context.Context, opts Options) (*Server, error) {
	begin := time.Now()
	c, err := opts.validate()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Claim every port before touching the data dir, so a port clash fails
	// fast and leaves no half-initialised database behind. The UI's port is
	// held apart: the UI starts only once the frontend is up.
	var ports, uiPort portReservation
	defer func() { _ = ports.release() }()  // no-op once released below
	defer func() { _ = uiPort.release() }() // likewise
	if c.frontend.port, err = ports.reserve(c.frontend.ip, c.frontend.port); err != nil {
		return nil, fmt.Errorf("devserver: frontend address %s is not available: %w", c.frontend, err)
	}
	if c.ui != nil {
		if c.ui.port, err = uiPort.reserve(c.ui.ip, c.ui.port); err != nil {
			return nil, fmt.Errorf("devserver: UI address %s is not available: %w", c.ui, err)
		}
	}
	var internal internalPorts
	for _, p := range []*int{&internal.frontendHTTP, &internal.history, &internal.matching, &internal.worker} {
		if *p, err = ports.reserve(c.frontend.ip, 0); err != nil {
			return nil, fmt.Errorf("devserver: pick a free port on %s: %w", c.frontend.ip, err)
		}
	}

	var stores persistence
	fresh := false
	if c.postgres != nil {
		stores = postgresStores(c.postgres)
	} else {
		if err := os.MkdirAll(filepath.Dir(c.dbPath), 0o700); err != nil {
			return nil, fmt.Errorf("devserver: create data dir: %w", err)
		}
		var sqlConf *config.SQL
		if sqlConf, fresh, err = prepareDatabase(c); err != nil {
			return nil, err
		}
		// One store for both: the plugin keeps one connection to the file.
		stores = persistence{stores: map[string]config.DataStore{"sqlite": {SQL: sqlConf}}, main: "sqlite", visibility: "sqlite"}
	}

	serverLog := zap.NewAtomicLevelAt(serverLogLevel)
	serverOpts := serverOptions(c, internal, stores, serverLog)
	// From here on the server binds its own listeners.
	if err := ports.release(); err != nil {
		return nil, fmt.Errorf("devserver: release reserved ports: %w", err)
	}
	ts, err := temporal.NewServer(serverOpts...)
	if err != nil {
		return nil, fmt.Errorf("devserver: build temporal server: %w", err)
	}
	s := &Server{
		namespace:    c.namespace,
		frontendAddr: c.frontend.dialAddr(),
		serverLog:    serverLog,
		temporal:     ts,
	}
	if c.tls != nil {
		s.clientTLS = c.tls.Client
	}
	if err := ts.Start(); err != nil {
		return nil, fmt.Errorf("devserver: start temporal server: %w", err)
	}

	readyCtx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		readyCtx, cancel = context.WithTimeout(ctx, readyTimeout)
		defer cancel()
	}
	if err := s.becomeReady(readyCtx, c, &uiPort); err != nil {
		if stopErr := s.Stop(); stopErr != nil {
			c.logger.Warn("stop temporal dev server after failed start", zap.Error(stopErr))
		}
		return nil, err
	}

	c.logger.Info("temporal dev server started",
		zap.String("frontend", s.frontendAddr),
		zap.String("ui", s.uiURL),
		zap.String("namespace", s.namespace),
		zap.String("db", c.dbPath),
		zap.Bool("new_db", fresh),
		zap.Duration("took", time.Since(begin)))
	return s, nil
}

// becomeReady waits for the frontend, then starts the UI, if enabled, and
// waits for it too.
func (s *Server) becomeReady(ctx context.Context, c startConfig, uiPort *portReservation) error {
	if err := s.waitReady(ctx); err != nil {
		return err
	}
	if c.ui == nil {
		return nil
	}
	if err := s.startUI(c, uiPort); err != nil {
		return err
	}
	return s.waitUIReady(ctx)
}

// startUI builds the UI and serves it in the background. It must run after
// the frontend is up: the UI dials the frontend as it is built, and a
// refused first dial leaves its connection in gRPC's reconnect backoff (1s
// and growing), during which every UI query fails with "connection
// refused" although the frontend is by then serving.
func (s *Server) startUI(c startConfig, uiPort *portReservation) error {
	ui, err := newUIServer(c)
	if err != nil {
		return err
	}
	if err := uiPort.release(); err != nil {
		return fmt.Errorf("devserver: release reserved UI port: %w", err)
	}
	s.ui = ui
	s.uiURL = "http://" + c.ui.dialAddr()
	s.uiDone = make(chan struct{})
	// The UI's Start serves until Stop, so it gets its own goroutine. It
	// only returns an error for a config problem; a failure to bind is fatal
	// inside the UI library (os.Exit), which holding the port until just
	// above is there to prevent.
	go func() {
		defer close(s.uiDone)
		if err := ui.Start(); err != nil {
			c.logger.Error("temporal UI server stopped", zap.Error(err))
		}
	}()
	return nil
}

// FrontendAddr is the host:port clients dial.
func (s *Server) FrontendAddr() string { return s.frontendAddr }

// UIURL is the Web UI base URL, or "" when the UI is disabled.
func (s *Server) UIURL() string { return s.uiURL }

// Namespace is the namespace created (or found) at start.
func (s *Server) Namespace() string { return s.namespace }

// Stop stops the UI, then the server. Calling it again returns the first
// result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		// Shutting down makes every service log its peers disappearing
		// (failed polls, refused dials, cancelled calls), and a few server
		// goroutines outlive Stop (see serverOptions) and keep retrying.
		// None of that is actionable, and a real failure comes back as the
		// error, so the server log goes quiet from here on.
		s.serverLog.SetLevel(silentLevel)
		s.stopUI()
		if err := s.temporal.Stop(); err != nil {
			s.stopErr = fmt.Errorf("devserver: stop temporal server: %w", err)
		}
	})
	return s.stopErr
}

func (s *Server) stopUI() {
	if s.ui == nil {
		return
	}
	// Closing before the goroutine has bound is fine: the UI then sees a
	// closed http.Server and returns at once.
	s.ui.Stop()
	<-s.uiDone
}

// waitReady polls the frontend's gRPC health service until the workflow API
// is SERVING. Start() of the Temporal server returning only means every
// service has been launched, not that the frontend handler is registered.
func (s *Server) waitReady(ctx context.Context) error {
	creds := insecure.NewCredentials()
	if s.clientTLS != nil {
		creds = credentials.NewTLS(s.clientTLS)
	}
	conn, err := grpc.NewClient(s.frontendAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("devserver: dial frontend %s: %w", s.frontendAddr, err)
	}
	defer func() { _ = conn.Close() }()
	health := healthpb.NewHealthClient(conn)

	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		resp, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: workflowServiceHealthName})
		switch {
		case err != nil:
			lastErr = err
		case resp.GetStatus() == healthpb.HealthCheckResponse_SERVING:
			return nil
		default:
			lastErr = fmt.Errorf("health status %s", resp.GetStatus())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devserver: frontend %s not ready: %w (last check: %v)", s.frontendAddr, ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// waitUIReady polls the UI's workflow list API until it answers 200. That
// needs both the UI's listener, bound in its goroutine, and its gRPC
// connection to the frontend, so a 200 means the UI works end to end.
func (s *Server) waitUIReady(ctx context.Context) error {
	url := s.uiURL + "/api/v1/namespaces/" + neturl.PathEscape(s.namespace) + "/workflows?pageSize=1"
	// The UI binds within milliseconds of its goroutine starting, so a
	// short interval keeps this wait from dominating a ~0.1s start; each
	// poll is one local request.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		if lastErr = getOK(ctx, url); lastErr == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devserver: UI %s not ready: %w (last check: %v)", s.uiURL, ctx.Err(), lastErr)
		case <-tick.C:
		}
	}
}

// getOK sends one GET and wants a 200.
func getOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}

type internalPorts struct {
	frontendHTTP, history, matching, worker int
}

// prepareDatabase returns the persistence config for the SQLite file, first
// creating the schema if the file is new and the namespace if it is missing.
func prepareDatabase(c startConfig) (*config.SQL, bool, error) {
	sqlConf := &config.SQL{
		PluginName:   sqliteplugin.PluginName,
		DatabaseName: c.dbPath,
		// The plugin copies the SQLite URI parameters it knows (mode, cache,
		// ...) into the DSN as they are and turns every other key into a
		// "_pragma=key=value" parameter, which the modernc driver runs on
		// each new connection.
		ConnectAttributes: map[string]string{
			// Create the file if missing.
			"mode": "rwc",
			// WAL with synchronous=NORMAL syncs only at checkpoints instead of
			// on every commit: about 3x faster than the default rollback
			// journal. A power cut can lose the last commits, never corrupt
			// the file, which is fine for a dev server. The plugin also looks
			// at journal_mode to decide whether more than one connection is
			// safe; we keep its default of one.
			"journal_mode": "wal",
			"synchronous":  "normal",
			// Wait instead of failing at once if something else (e.g. a
			// sqlite3 shell) holds a lock on the file.
			"busy_timeout": "5000",
		},
	}

	_, statErr := os.Stat(c.dbPath)
	fresh := errors.Is(statErr, os.ErrNotExist)
	if statErr != nil && !fresh {
		return nil, false, fmt.Errorf("devserver: stat database: %w", statErr)
	}
	if fresh {
		if err := sqliteschema.SetupSchema(sqlConf); err != nil {
			return nil, false, fmt.Errorf("devserver: set up sqlite schema in %s (remove the file before retrying): %w", c.dbPath, err)
		}
	}

	ns, err := sqliteschema.NewNamespaceConfig(clusterName, c.namespace, false, nil)
	if err != nil {
		return nil, false, fmt.Errorf("devserver: namespace config: %w", err)
	}
	// NewNamespaceConfig hard-codes a one-day retention.
	ns.Detail.Config.Retention = durationpb.New(c.retention)
	// A no-op when the namespace exists, so its settings survive restarts.
	if err := sqliteschema.CreateNamespaces(sqlConf, ns); err != nil {
		return nil, false, fmt.Errorf("devserver: create namespace %q: %w", c.namespace, err)
	}
	return sqlConf, fresh, nil
}

// persistence is the server config's data stores and which is which.
type persistence struct {
	stores           map[string]config.DataStore
	main, visibility string
}

// postgresStores is the persistence on PostgreSQL, through the plugin
// production uses.
func postgresStores(p *Postgres) persistence {
	store := func(db string) config.DataStore {
		return config.DataStore{SQL: &config.SQL{
			PluginName:        postgresplugin.PluginName,
			ConnectAddr:       p.Addr,
			ConnectProtocol:   "tcp",
			User:              p.User,
			Password:          p.Password,
			DatabaseName:      db,
			ConnectAttributes: p.ConnectAttributes,
			// A handful per store is plenty for one shard.
			MaxConns:     10,
			MaxIdleConns: 10,
		}}
	}
	return persistence{
		stores: map[string]config.DataStore{"postgres": store(p.Database), "postgres-visibility": store(p.VisibilityDatabase)},
		main:   "postgres", visibility: "postgres-visibility",
	}
}

func serverOptions(c startConfig, ports internalPorts, stores persistence, logLevel zap.AtomicLevel) []temporal.ServerOption {
	ip := c.frontend.ip.String()
	hostPort := func(port int) string {
		return net.JoinHostPort(c.frontend.dialHost(), strconv.Itoa(port))
	}
	service := func(grpcPort int) config.Service {
		var svc config.Service
		svc.RPC.BindOnIP = ip
		svc.RPC.GRPCPort = grpcPort
		return svc
	}
	frontend := service(c.frontend.port)
	frontend.RPC.HTTPPort = ports.frontendHTTP

	conf := &config.Config{}
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = c.frontend.dialHost()
	conf.Persistence.DefaultStore = stores.main
	conf.Persistence.VisibilityStore = stores.visibility
	// One shard is plenty for a single developer and keeps the number of
	// shard goroutines and database rows small. Persisted on first start.
	conf.Persistence.NumHistoryShards = 1
	conf.Persistence.DataStores = stores.stores
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             hostPort(c.frontend.port),
				HTTPAddress:            hostPort(ports.frontendHTTP),
				// ClusterID stays empty: the server generates one on first
				// start and keeps the persisted one afterwards.
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{
		string(primitives.FrontendService): frontend,
		string(primitives.HistoryService):  service(ports.history),
		string(primitives.MatchingService): service(ports.matching),
		string(primitives.WorkerService):   service(ports.worker),
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	// The worker service (system workflows) reaches the frontend through this.
	conf.PublicClient.HostPort = hostPort(c.frontend.port)

	dynConf := dynamicconfig.StaticClient{
		// Search attributes registered through the operator API at start-up
		// must be usable by the very next StartWorkflow; without this the
		// frontend serves them from a cache refreshed every minute or so.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		// Workflow Updates (frontend.enableUpdateWorkflowExecution and
		// ...AsyncAccepted) are on by default in v1.32, so not set here.

		// These three background jobs run SDK workers inside the worker
		// service that v1.32.1 never stops: after Stop their pollers keep
		// retrying the dead frontend for the life of the process (~75
		// goroutines per start/stop cycle, which adds up in tests; about 30
		// more, idle gRPC client connections, leak regardless). A dev database does not need them: the scanners
		// garbage-collect old task queues and orphaned history branches, and
		// without the parent-close-policy worker the history service applies
		// parent close policies inline, as it already does below the
		// fan-out threshold.
		dynamicconfig.TaskQueueScannerEnabled.Key():       false,
		dynamicconfig.HistoryScannerEnabled.Key():         false,
		dynamicconfig.EnableParentClosePolicyWorker.Key(): false,
	}

	// Static hosts replace ringpop membership: every service runs in this
	// process at a known address.
	hosts := map[primitives.ServiceName]static.Hosts{
		primitives.FrontendService: static.SingleLocalHost(hostPort(c.frontend.port)),
		primitives.HistoryService:  static.SingleLocalHost(hostPort(ports.history)),
		primitives.MatchingService: static.SingleLocalHost(hostPort(ports.matching)),
		primitives.WorkerService:   static.SingleLocalHost(hostPort(ports.worker)),
	}

	opts := []temporal.ServerOption{
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(newZapLogger(c.logger.Named("temporal"), logLevel)),
		temporal.WithDynamicConfigClient(dynConf),
		// Local dev: no authentication, every call allowed.
		temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper {
			return authorization.NewNoopClaimMapper()
		}),
	}
	if c.tls != nil {
		opts = append(opts, temporal.WithTLSConfigFactory(frontendTLS{c.tls}))
	}
	return append(opts, c.extra...)
}

// frontendTLS serves the frontend with TLS and leaves the services' own
// traffic plain.
type frontendTLS struct{ t *TLS }

func (f frontendTLS) GetInternodeServerConfig() (*tls.Config, error) { return nil, nil }
func (f frontendTLS) GetInternodeClientConfig() (*tls.Config, error) { return nil, nil }
func (f frontendTLS) GetFrontendServerConfig() (*tls.Config, error)  { return f.t.Server, nil }
func (f frontendTLS) GetFrontendClientConfig() (*tls.Config, error)  { return f.t.Client, nil }
func (f frontendTLS) GetRemoteClusterClientConfig(string) (*tls.Config, error) {
	return nil, nil
}
func (f frontendTLS) GetExpiringCerts(time.Duration) (encryption.CertExpirationMap, encryption.CertExpirationMap, error) {
	return nil, nil, nil
}

// newUIServer builds the Web UI server. The UI library panics on bad config;
// that is turned into an error so Start never panics.
func newUIServer(c startConfig) (ui *uiserver.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			ui, err = nil, fmt.Errorf("devserver: build UI server: %v", r)
		}
	}()
	host := c.ui.ip.String()
	if c.ui.ip.To4() == nil {
		// The UI formats its listen address as host:port without brackets.
		host = "[" + host + "]"
	}
	cfg := &uiconfig.Config{
		Host:                host,
		Port:                c.ui.port,
		TemporalGRPCAddress: c.frontend.dialAddr(),
		EnableUI:            true,
		DefaultNamespace:    c.namespace,
		// Do not call out to temporal.io from a local tool.
		DisableNewsFetch: true,
		// Served over plain http on localhost, so the CSRF cookie must not
		// be marked Secure or browsers drop it and every write action fails.
		CORS: uiconfig.CORS{CookieInsecure: true},
		// The UI otherwise prints a banner and an access log line per request
		// to stdout, bypassing our logger.
		HideLogs: true,

		// Approvals go through the gateway, which authenticates people and
		// checks the rules; anyone who reaches this UI must not be able to go
		// around it. These flags only hide the UI's buttons (the UI server
		// forwards the calls regardless); refuseUIWrites below refuses them.
		// Cancel and terminate stay: an operator may stop a run.
		WorkflowSignalDisabled:   true,
		WorkflowUpdateDisabled:   true,
		WorkflowResetDisabled:    true,
		WorkflowPauseDisabled:    true,
		ActivityCommandsDisabled: true,
		BatchActionsDisabled:     true,
		// A workflow started here would be a run the gateway never saw.
		StartWorkflowDisabled: true,

		// The gateway's /codec answers admins by the session cookie of
		// Gatehouse's web UI, which shares this UI's site.
		Codec: uiconfig.Codec{Endpoint: c.codec, IncludeCredentials: c.codec != ""},
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("devserver: UI config: %w", err)
	}
	return uiserver.NewServer(
		uiserveroptions.WithConfigProvider(cfg),
		uiserveroptions.WithAPIMiddleware([]uiapi.Middleware{
			func(echo.Context) runtime.ServeMuxOption { return runtime.WithMiddlewares(refuseUIWrites) },
		}),
	), nil
}

// refuseUIWrites wraps every Temporal API route of the UI server: reads
// pass, and of the calls that change something only cancel, terminate and
// query (a read sent as POST) do. Everything else, signal, update, reset,
// start, batch, schedules, activity completion, namespace changes, gets a
// 403. The UI's own DisableWriteActions would also refuse cancel and
// terminate.
func refuseUIWrites(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if uiCallAllowed(r) {
			next(w, r, params)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		// The shape of a gRPC-gateway error, which the UI displays; code 7
		// is PERMISSION_DENIED.
		_, _ = io.WriteString(w, `{"code": 7, "message": "gatehouse dev: the embedded Web UI may only read, cancel and terminate; approve or reject through the Gatehouse API"}`)
	}
}

// uiCallAllowed decides on the route's path template, not the request path,
// so a workflow ID such as "x/cancel" cannot pass for the cancel route.
// Routes are matched by their literal segments, without the /api/v1 prefix
// some bindings carry; a route it cannot identify is refused.
func uiCallAllowed(r *http.Request) bool {
	// Every GET route of the workflow and operator services is a read.
	if r.Method == http.MethodGet {
		return true
	}
	pattern, ok := runtime.HTTPPattern(r.Context())
	if !ok {
		return false
	}
	switch routeLiterals(pattern.String()) {
	case "namespaces/workflows/cancel",
		"namespaces/workflows/terminate",
		"namespaces/workflows/query":
		return true
	}
	return false
}

// routeLiterals reduces a path template such as
// "/api/v1/namespaces/{namespace=*}/workflows/{id=*}/cancel" to its fixed
// segments, "namespaces/workflows/cancel". A verb (":name") stays attached
// to its segment, so such routes never match an allowed one.
func routeLiterals(template string) string {
	var literal strings.Builder
	depth := 0
	for _, r := range template {
		switch {
		case r == '{':
			depth++
		case r == '}':
			depth--
		case depth == 0:
			literal.WriteRune(r)
		}
	}
	var segs []string
	for seg := range strings.SplitSeq(literal.String(), "/") {
		if seg != "" && seg != "*" && seg != "**" {
			segs = append(segs, seg)
		}
	}
	if len(segs) >= 2 && segs[0] == "api" && segs[1] == "v1" {
		segs = segs[2:]
	}
	return strings.Join(segs, "/")
}
