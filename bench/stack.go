package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/signing"
)

// workspaceName is the i-th bench workspace.
func workspaceName(i int) string { return fmt.Sprintf("bench-%02d", i) }

// benchConfig is a Gatehouse config with n identical workspaces, each
// needing two approvals from platform for any plan and applying with a
// command that does nothing. Runs of one batch each get a workspace of
// their own: Gatehouse applies one run at a time per workspace, and a
// queued run asks for the lock again only every 10 s, so sharing one would
// measure that retry period, not Gatehouse. supersede is off because a
// workspace may hold several waiting runs (--waiting). The audit trail is
// named here, in the data dir where dev would keep it, so that a
// GATEHOUSE_DATABASE_URL in the environment cannot send it elsewhere.
func benchConfig(n int) string {
	var b strings.Builder
	b.WriteString("database: {driver: sqlite, dsn: data/audit.db}\n")
	b.WriteString("users:\n")
	for _, u := range []string{"alice", "bob", "carol"} {
		fmt.Fprintf(&b, "  - {id: %s, email: %s@example.com, groups: [platform], roles: [approver], token: %s}\n", u, u, tokenOf(u))
	}
	b.WriteString("workspaces:\n")
	for i := range n {
		fmt.Fprintf(&b, `  - name: %s
    timeout: 4h
    supersede: false
    apply: {command: ["true"]}
    rules:
      - {name: two-approvals, approvers: {groups: [platform]}, min_approvals: %d}
`, workspaceName(i), approvalsPerRun)
	}
	return b.String()
}

// stack is the Gatehouse under test: the embedded dev stack or a worker and
// gateway against a cluster.
type stack interface {
	HTTPURL() string
	TemporalAddr() string
	Namespace() string
	Close() error
}

// startStack starts the Gatehouse the options ask for, on a fresh data dir
// under dir, and says how long that took.
func startStack(ctx context.Context, dir string, o Options, out io.Writer) (stack, time.Duration, error) {
	if o.TemporalAddr == "" {
		fmt.Fprintf(out, "starting gatehouse dev in %s …\n", dir)
		dev, ready, err := startDev(ctx, dir, o.Batch, o.Logger)
		if err != nil {
			return nil, 0, err // not a nil *app.Dev in a non-nil stack
		}
		return dev, ready, nil
	}
	fmt.Fprintf(out, "starting a gatehouse worker and gateway against %s (namespace %s) in %s …\n", o.TemporalAddr, o.Namespace, dir)
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(benchConfig(o.Batch)), 0o600); err != nil {
		return nil, 0, fmt.Errorf("write bench config: %w", err)
	}
	// The data dir holds the audit trail, the plans and the claims; a key
	// of this process's own signs and verifies its runs.
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, 0, fmt.Errorf("bench data dir: %w", err)
	}
	key, err := signing.Generate()
	if err != nil {
		return nil, 0, err
	}
	begin := time.Now()
	st, err := app.StartStack(ctx, app.Options{
		ConfigPath:   cfgPath,
		DataDir:      filepath.Join(dir, "data"),
		TemporalAddr: o.TemporalAddr,
		Namespace:    o.Namespace,
		Temporal:     o.Temporal,
		// Its own queue: other workers on the cluster know no bench
		// workspace.
		TaskQueue:   "gatehouse-bench-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		HTTPAddr:    "127.0.0.1:0",
		SigningKeys: key,
		Logger:      o.Logger,
	})
	if err != nil {
		return nil, 0, fmt.Errorf("start gatehouse against %s: %w", o.TemporalAddr, err)
	}
	return st, time.Since(begin), nil
}

// startDev starts a gatehouse dev stack on a fresh data dir under dir,
// with every address picked by the kernel and no Web UI, and says how long
// StartDev took.
func startDev(ctx context.Context, dir string, workspaces int, logger *zap.Logger) (*app.Dev, time.Duration, error) {
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(benchConfig(workspaces)), 0o600); err != nil {
		return nil, 0, fmt.Errorf("write bench config: %w", err)
	}
	begin := time.Now()
	dev, err := app.StartDev(ctx, app.DevOptions{Options: app.Options{
		ConfigPath:   cfgPath,
		DataDir:      filepath.Join(dir, "data"),
		TemporalAddr: "127.0.0.1:0",
		HTTPAddr:     "127.0.0.1:0",
		Logger:       logger,
	}})
	if err != nil {
		return nil, 0, fmt.Errorf("start gatehouse dev: %w", err)
	}
	return dev, time.Since(begin), nil
}
