package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/approval"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

func newStartCmd() *cobra.Command {
	var (
		a                      runArgs
		w                      waitFlags
		sub                    gateway.Submission
		costPath, planFilePath string
		wait                   bool
	)
	cmd := &cobra.Command{
		Use:   "start [PLAN.json]",
		Short: "Start a run: submit a plan (terraform show -json output; - for stdin), or have a terraform workspace plan itself",
		Long: `Start a run and print it. With PLAN.json (- reads stdin) the plan is submitted
byte for byte: its SHA-256 is the run's plan hash. Without it, a workspace
with a terraform block plans itself (the run starts in status planning).

With --wait, start then waits for the run like "gatehouse wait" and exits
with the same codes.

` + exitCodesHelp,
		Example: `  gatehouse start -w prod-network -m "replace the NAT gateway" plan.json
  terraform show -json tfplan | gatehouse start -w prod-network --plan-file tfplan --cost infracost.json -
  gatehouse start -w prod-network --ref main --wait --out approval.json --timeout 4h`,
		Args: cobra.MaximumNArgs(1),
	}
	cmd.RunE = withJSONErrors(&a.asJSON, func(cmd *cobra.Command, args []string) error {
		c, err := a.client(true)
		if err != nil {
			return err
		}
		if err := readSubmission(cmd, args, costPath, planFilePath, &sub); err != nil {
			return err
		}
		ctx, cancel := callCtx(cmd)
		defer cancel()
		run, err := c.Submit(ctx, a.workspace, sub)
		if err != nil {
			return err
		}
		if wait {
			if !a.asJSON {
				printRun(cmd.OutOrStdout(), c, run)
			}
			return w.run(cmd, c, a, run.ID)
		}
		if a.asJSON {
			return printJSON(cmd.OutOrStdout(), run)
		}
		printRun(cmd.OutOrStdout(), c, run)
		return nil
	})
	a.bind(cmd)
	w.bind(cmd)
	f := cmd.Flags()
	f.StringVarP(&sub.Message, "message", "m", "", "what this change is for")
	f.StringVar(&costPath, "cost", "", "Infracost estimate (infracost breakdown --format json) to submit with the plan")
	f.StringVar(&sub.OnBehalfOf, "on-behalf-of", "", "the person the run is for (automation users only)")
	f.StringVar(&planFilePath, "plan-file", "", "the binary plan of terraform plan -out, which the apply will use")
	f.StringVar(&sub.Ref, "ref", "", "git ref a terraform workspace plans from")
	f.StringVar(&sub.IdempotencyKey, "idempotency-key", "", "makes a retried submission return the same run")
	f.BoolVar(&wait, "wait", false, "then wait for the run, as gatehouse wait does")
	return cmd
}

// readSubmission reads the files named on start's command line.
func readSubmission(cmd *cobra.Command, args []string, costPath, planFilePath string, sub *gateway.Submission) error {
	var err error
	if len(args) == 1 {
		if args[0] == "-" {
			sub.Plan, err = io.ReadAll(cmd.InOrStdin())
		} else {
			sub.Plan, err = os.ReadFile(args[0])
		}
		if err != nil {
			return fmt.Errorf("read plan: %w", err)
		}
	}
	if costPath != "" {
		if sub.Cost, err = os.ReadFile(costPath); err != nil {
			return fmt.Errorf("read cost estimate: %w", err)
		}
	}
	if planFilePath != "" {
		if sub.PlanFile, err = os.ReadFile(planFilePath); err != nil {
			return fmt.Errorf("read plan file: %w", err)
		}
	}
	return nil
}

// printRun prints a run for people.
func printRun(out io.Writer, c *gateway.Client, run gateway.RunView) {
	status := string(run.Status)
	if status == "" {
		status = "not read yet" // a create answered 202: see Detail
	}
	fmt.Fprintf(out, "run:    %s\nstatus: %s\n", run.ID, status)
	if run.Detail != "" {
		fmt.Fprintf(out, "note:   %s\n", run.Detail)
	}
	if run.Plan.SHA256 != "" {
		fmt.Fprintf(out, "plan:   +%d ~%d -%d (%d replaced) sha256 %s\n",
			run.Plan.Adds, run.Plan.Changes, run.Plan.Destroys, run.Plan.Replaces, run.Plan.SHA256)
	}
	if run.Error != "" {
		fmt.Fprintf(out, "error:  %s\n", run.Error)
	}
	fmt.Fprintf(out, "url:    %s\n", c.RunURL(run))
	for _, r := range run.Reasons {
		fmt.Fprintf(out, "needs:  %s %s (%s)%s\n", r.Name, r.Progress, r.State, approvedBy(r))
	}
}

// approvedBy lists who approved a reason, for people.
func approvedBy(r gateway.ReasonView) string {
	var names []string
	for _, a := range r.Approvers {
		if a.State == approval.ApproverApproved {
			names = append(names, string(a.UserID))
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " approved by " + strings.Join(names, ", ")
}

func newStatusCmd() *cobra.Command {
	var a runArgs
	cmd := &cobra.Command{
		Use:     "status RUN",
		Short:   "Print a run: its status, plan and what it still needs",
		Example: "  gatehouse status -w prod-network run-01J…\n  gatehouse status -w prod-network run-01J… --json | jq .status",
		Args:    cobra.ExactArgs(1),
	}
	cmd.RunE = withJSONErrors(&a.asJSON, func(cmd *cobra.Command, args []string) error {
		c, err := a.client(true)
		if err != nil {
			return err
		}
		ctx, cancel := callCtx(cmd)
		defer cancel()
		run, err := c.GetRun(ctx, a.workspace, args[0])
		if err != nil {
			return err
		}
		if a.asJSON {
			return printJSON(cmd.OutOrStdout(), run)
		}
		printRun(cmd.OutOrStdout(), c, run)
		return nil
	})
	a.bind(cmd)
	return cmd
}

func newListCmd() *cobra.Command {
	var (
		a      runArgs
		status string
	)
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List a workspace's runs, newest first",
		Example: "  gatehouse list -w prod-network --status pending_approval",
		Args:    cobra.NoArgs,
	}
	cmd.RunE = withJSONErrors(&a.asJSON, func(cmd *cobra.Command, _ []string) error {
		c, err := a.client(true)
		if err != nil {
			return err
		}
		ctx, cancel := callCtx(cmd)
		defer cancel()
		runs, err := c.ListRuns(ctx, a.workspace, approval.Status(status))
		if err != nil {
			return err
		}
		if a.asJSON {
			return printJSON(cmd.OutOrStdout(), map[string]any{"runs": runs})
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RUN\tSTATUS\tREQUESTED BY\tCREATED\tPENDING APPROVERS")
		for _, r := range runs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, r.RequestedBy,
				r.CreatedAt.UTC().Format(time.DateTime), strings.Join(r.PendingApprovers, ","))
		}
		return tw.Flush()
	})
	a.bind(cmd)
	cmd.Flags().StringVar(&status, "status", "", "only runs in this status, e.g. pending_approval")
	return cmd
}

// decisionCmd is a verb that sends one decision on a run; body builds the
// decision from the verb's flags.
func decisionCmd(cmd *cobra.Command, a *runArgs, kind approval.DecisionKind, body func() (gateway.Decision, error)) *cobra.Command {
	cmd.Args = cobra.ExactArgs(1)
	cmd.RunE = withJSONErrors(&a.asJSON, func(cmd *cobra.Command, args []string) error {
		d, err := body()
		if err != nil {
			return err
		}
		c, err := a.client(true)
		if err != nil {
			return err
		}
		ctx, cancel := callCtx(cmd)
		defer cancel()
		run, err := c.Decide(ctx, a.workspace, args[0], kind, d, "")
		if err != nil {
			return err
		}
		if a.asJSON {
			return printJSON(cmd.OutOrStdout(), run)
		}
		printRun(cmd.OutOrStdout(), c, run)
		return nil
	})
	a.bind(cmd)
	return cmd
}

func newApproveCmd() *cobra.Command {
	var (
		a       runArgs
		comment string
		reasons []string
	)
	cmd := decisionCmd(&cobra.Command{
		Use:   "approve RUN",
		Short: "Approve a run: every open reason you may approve, or those given with --reason",
		Example: `  gatehouse approve -w prod-network run-01J… --comment "NAT swap checked"
  gatehouse approve -w prod-network run-01J… --reason rule:destroys-need-two`,
	}, &a, approval.DecisionApprove, func() (gateway.Decision, error) {
		return gateway.Decision{Comment: comment, ReasonIDs: reasons}, nil
	})
	cmd.Flags().StringVar(&comment, "comment", "", "why you approve")
	cmd.Flags().StringSliceVar(&reasons, "reason", nil, "reason id to approve (repeatable); default all you may approve")
	return cmd
}

func newRejectCmd() *cobra.Command {
	var (
		a       runArgs
		comment string
	)
	cmd := decisionCmd(&cobra.Command{
		Use:     "reject RUN --comment TEXT",
		Short:   "Reject a run: it ends rejected and nothing is applied",
		Example: `  gatehouse reject -w prod-network run-01J… --comment "destroys the prod VPC"`,
	}, &a, approval.DecisionReject, func() (gateway.Decision, error) {
		if strings.TrimSpace(comment) == "" {
			return gateway.Decision{}, usageErrorf("--comment is required: say why")
		}
		return gateway.Decision{Comment: comment}, nil
	})
	cmd.Flags().StringVar(&comment, "comment", "", "why you reject (required)")
	return cmd
}

func newCancelCmd() *cobra.Command {
	var (
		a       runArgs
		message string
	)
	cmd := decisionCmd(&cobra.Command{
		Use:     "cancel RUN --message TEXT",
		Short:   "Cancel a run: it ends cancelled and nothing is applied",
		Example: `  gatehouse cancel -w prod-network run-01J… --message "superseded by #482"`,
	}, &a, approval.DecisionCancel, func() (gateway.Decision, error) {
		if strings.TrimSpace(message) == "" {
			return gateway.Decision{}, usageErrorf("--message is required: say why")
		}
		return gateway.Decision{Message: message}, nil
	})
	cmd.Flags().StringVarP(&message, "message", "m", "", "why you cancel (required)")
	return cmd
}

func newLogsCmd() *cobra.Command {
	var a runArgs
	cmd := &cobra.Command{
		Use:     "logs RUN",
		Short:   "Print the apply's output",
		Example: "  gatehouse logs -w prod-network run-01J…",
		Args:    cobra.ExactArgs(1),
	}
	cmd.RunE = withJSONErrors(&a.asJSON, func(cmd *cobra.Command, args []string) error {
		c, err := a.client(true)
		if err != nil {
			return err
		}
		ctx, cancel := callCtx(cmd)
		defer cancel()
		log, err := c.Logs(ctx, a.workspace, args[0])
		if err != nil {
			return err
		}
		if a.asJSON {
			return printJSON(cmd.OutOrStdout(), map[string]any{"run": args[0], "workspace": a.workspace, "log": string(log)})
		}
		_, err = cmd.OutOrStdout().Write(log)
		return err
	})
	a.bind(cmd)
	return cmd
}
