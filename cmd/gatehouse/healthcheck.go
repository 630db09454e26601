package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// newHealthcheckCmd is `gatehouse healthcheck URL`: a container healthcheck
// for images that have no curl or wget (ours has neither, on purpose).
func newHealthcheckCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck URL",
		Short: "GET URL and exit 0 when it answers 2xx, 1 otherwise (a container healthcheck)",
		Example: "  gatehouse healthcheck http://127.0.0.1:8080/readyz   # the gateway: Temporal and the audit database answer\n" +
			"  gatehouse healthcheck http://127.0.0.1:9464/metrics  # the worker's metrics listener: the process is up",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			defer resp.Body.Close()
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			if resp.StatusCode < 200 || resp.StatusCode > 299 {
				return fmt.Errorf("healthcheck: %s answered %s", args[0], resp.Status)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "give up after this long")
	return cmd
}
