package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/gatehouse-dev/gatehouse/app"
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
