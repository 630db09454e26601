// Package cli holds the gatehouse binary's client verbs: those that talk to
// a gateway over the REST API (start, status, list, approve, reject,
// cancel, logs, wait), those that check signed approvals (verify, keys
// public) and version. Package main adds its server commands to NewRoot.
// The verbs only parse flags, call gateway.Client and print; what a
// decision or a signature means is decided in packages gateway and approval.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/gateway"
)

// NewRoot returns the root command with the client verbs.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Durable, auditable human approval between a Terraform plan and its apply",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newStartCmd(), newStatusCmd(), newListCmd(), newApproveCmd(), newRejectCmd(), newCancelCmd(),
		newLogsCmd(), newWaitCmd(), newVerifyCmd(), newKeysCmd(), newVersionCmd(), newAuditCmd())
	return root
}

// requestTimeout bounds one API call.
const requestTimeout = time.Minute

// Environment variables of the client verbs.
const (
	envURL   = "GATEHOUSE_URL"
	envToken = "GATEHOUSE_TOKEN"
)

// defaultURL is the gateway of `gatehouse dev`.
const defaultURL = "http://127.0.0.1:8080"

// clientFlags are --url and --token, on every verb that calls a gateway.
type clientFlags struct {
	url, token string
}

// bind adds the flags. The token's default is not shown in --help (it is a
// secret): an unset flag is read from the environment when the verb runs.
func (f *clientFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "url", "", "gateway base URL (env "+envURL+"; default "+defaultURL+")")
	cmd.Flags().StringVar(&f.token, "token", "", "bearer token (env "+envToken+")")
}

// baseURL is --url, else GATEHOUSE_URL, else the dev gateway.
func (f *clientFlags) baseURL() string {
	for _, v := range []string{f.url, os.Getenv(envURL)} {
		if v != "" {
			return v
		}
	}
	return defaultURL
}

// client returns a client of the gateway; with needToken, one that has a
// token.
func (f *clientFlags) client(needToken bool) (*gateway.Client, error) {
	token := f.token
	if token == "" {
		token = os.Getenv(envToken)
	}
	if needToken && token == "" {
		return nil, usageErrorf("--token (or %s) is required", envToken)
	}
	return &gateway.Client{BaseURL: f.baseURL(), Token: token}, nil
}

// runArgs are the flags and argument of a verb that acts on one run.
type runArgs struct {
	clientFlags
	workspace string
	asJSON    bool
}

// bind adds --url, --token, -w/--workspace (required) and --json.
func (a *runArgs) bind(cmd *cobra.Command) {
	a.clientFlags.bind(cmd)
	cmd.Flags().StringVarP(&a.workspace, "workspace", "w", "", "workspace of the run (required)")
	_ = cmd.MarkFlagRequired("workspace")
	bindJSON(cmd, &a.asJSON)
}

func bindJSON(cmd *cobra.Command, asJSON *bool) {
	cmd.Flags().BoolVar(asJSON, "json", false, "print a JSON object")
}

// withJSONErrors makes a verb's failure a JSON object on stdout too when
// --json is set, so a pipeline that parses the output always gets one. The
// error is still returned: main reports it on stderr and exits with its
// code.
func withJSONErrors(asJSON *bool, run func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := run(cmd, args)
		var exit *ExitError
		if err == nil || !*asJSON || (errors.As(err, &exit) && exit.printed) {
			return err
		}
		code, msg := Exit(err)
		if werr := printJSON(cmd.OutOrStdout(), map[string]any{"error": msg, "exit_code": code}); werr != nil {
			return errors.Join(err, werr)
		}
		return err
	}
}

// printJSON writes v indented, one object per call.
func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// callCtx bounds one API call.
func callCtx(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), requestTimeout)
}
