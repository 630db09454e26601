package cli

import (
	"context"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "audit",
		Short:   "Read the audit trail: who did what to which run, kept beyond Temporal's retention",
		Example: "  gatehouse audit export --since 720h --format csv > audit.csv",
	}
	cmd.AddCommand(newAuditExportCmd())
	return cmd
}

func newAuditExportCmd() *cobra.Command {
	var (
		f                             clientFlags
		since, until, format          string
		workspace, run, actor, action string
		exportTimeout                 time.Duration
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the audit trail's events, newest first, as CSV or JSON Lines to stdout",
		Long: `Export the audit trail over the gateway's API (GET /api/v1/audit/export),
streamed: every event of the workspaces your token may read that matches the
filters. --since and --until take an RFC 3339 time or a duration back from
now (720h is the last 30 days).`,
		Example: `  gatehouse audit export --since 720h --format csv > audit.csv
  gatehouse audit export --since 2026-11-01T00:00:00Z --until 2026-12-01T00:00:00Z -w prod-network --format jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(true)
			if err != nil {
				return err
			}
			now := time.Now()
			q := url.Values{}
			for name, v := range map[string]string{"since": since, "until": until} {
				if v == "" {
					continue
				}
				t, err := timeOrAgo(v, now)
				if err != nil {
					return usageErrorf("--%s: %v", name, err)
				}
				q.Set(name, t.UTC().Format(time.RFC3339Nano))
			}
			if format != "csv" && format != "jsonl" {
				return usageErrorf("--format: want csv or jsonl, not %q", format)
			}
			q.Set("format", format)
			for name, v := range map[string]string{"workspace": workspace, "run": run, "actor": actor, "action": action} {
				if v != "" {
					q.Set(name, v)
				}
			}
			ctx := cmd.Context()
			if exportTimeout > 0 {
				var cancel func()
				ctx, cancel = context.WithTimeout(ctx, exportTimeout)
				defer cancel()
			}
			return c.ExportAudit(ctx, q, cmd.OutOrStdout())
		},
	}
	f.bind(cmd)
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "oldest event: an RFC 3339 time, or a duration back from now such as 720h (required)")
	fl.StringVar(&until, "until", "", "events before this RFC 3339 time or duration back from now")
	fl.StringVar(&format, "format", "csv", "csv or jsonl")
	fl.StringVarP(&workspace, "workspace", "w", "", "only this workspace")
	fl.StringVar(&run, "run", "", "only this run")
	fl.StringVar(&actor, "actor", "", "only what this user (or servicenow:…, system) did")
	fl.StringVar(&action, "action", "", "only this action (approved, rejected, apply_started, ...)")
	fl.DurationVar(&exportTimeout, "timeout", 30*time.Minute, "give up after this long (0: never)")
	_ = cmd.MarkFlagRequired("since")
	return cmd
}

// timeOrAgo reads an RFC 3339 time, or a duration back from now.
func timeOrAgo(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, usageErrorf("%q is neither an RFC 3339 time (2026-11-01T00:00:00Z) nor a duration (720h)", s)
	}
	return now.Add(-d), nil
}
