package cli

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/app"
	"github.com/gatehouse-dev/gatehouse/gateway"
)

func newVerifyCmd() *cobra.Command {
	var (
		cf        clientFlags
		planPath  string
		planFile  string
		publicKey string
		workspace string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "verify APPROVAL.json --plan PLAN.json",
		Short: "Check a signed approval before applying: valid signature, and the plan is the approved one",
		Long: `Check a signed approval (from "gatehouse wait --out") before applying: its
Ed25519 signature must be valid for the gateway's approval key, and the
SHA-256 of PLAN.json (its bytes, surrounding whitespace trimmed, exactly as
"gatehouse start" submits them) must be the approved plan's. With
--plan-file, the binary plan (plan -out) about to be applied must be the
one the run was approved with, byte for byte. With -w, the approval must
also be for that workspace.

The public key is --public-key (base64, as "gatehouse keys public" prints
it, or hex), else fetched from the gateway at --url. Pin it with
--public-key in pipelines: a key fetched from the gateway proves only that
this gateway signed.

Exit codes:
   0  valid: signed by the key, for this plan (and workspace)
   1  error: usage, unreadable files, key not available
  20  bad signature: not signed by this key, or altered
  21  plan mismatch: PLAN.json (or --plan-file) is not the approved plan
  22  the approval is for another workspace than -w`,
		Example: `  gatehouse verify approval.json --plan plan.json --public-key "$GATEHOUSE_APPROVAL_PUBLIC_KEY"
  gatehouse verify approval.json --plan plan.json --plan-file tfplan -w ci-gate --url https://gatehouse.example.com`,
		Args: cobra.ExactArgs(1),
	}
	cmd.RunE = withJSONErrors(&asJSON, func(cmd *cobra.Command, args []string) error {
		pub, err := resolvePublicKey(cmd, &cf, publicKey)
		if err != nil {
			return err
		}
		doc, err := os.ReadFile(args[0])
		if err != nil {
			return fmt.Errorf("read approval: %w", err)
		}
		planJSON, err := os.ReadFile(planPath)
		if err != nil {
			return fmt.Errorf("read plan: %w", err)
		}
		var binary []byte
		if planFile != "" {
			if binary, err = os.ReadFile(planFile); err != nil {
				return fmt.Errorf("read plan file: %w", err)
			}
		}
		d, err := verify(doc, planJSON, binary, pub, workspace)
		return reportVerify(cmd, asJSON, d, err)
	})
	cf.bind(cmd)
	f := cmd.Flags()
	f.StringVar(&planPath, "plan", "", "the plan JSON about to be applied (required)")
	f.StringVar(&planFile, "plan-file", "", "also check the binary plan (plan -out) about to be applied")
	f.StringVar(&publicKey, "public-key", "", "the approval key's public half (base64 or hex); default: fetched from --url")
	f.StringVarP(&workspace, "workspace", "w", "", "also require the approval to be for this workspace")
	bindJSON(cmd, &asJSON)
	_ = cmd.MarkFlagRequired("plan")
	return cmd
}

// verify is gateway.VerifyApproval with the checks of the binary plan
// (when given) and of the workspace, its failures given their exit codes.
func verify(doc, planJSON, planFile []byte, pub ed25519.PublicKey, workspace string) (gateway.SignedApproval, error) {
	d, err := gateway.VerifyApproval(doc, planJSON, pub)
	if err == nil && planFile != nil {
		err = d.CheckPlanFile(planFile)
	}
	switch {
	case errors.Is(err, gateway.ErrBadSignature):
		return d, &ExitError{Code: ExitBadSignature, Err: err}
	case errors.Is(err, gateway.ErrPlanMismatch):
		return d, &ExitError{Code: ExitPlanMismatch, Err: err}
	case err != nil:
		return d, err
	case workspace != "" && d.Workspace != workspace:
		return d, &ExitError{Code: ExitWrongWorkspace, Err: fmt.Errorf("approval of run %s is for workspace %s, not %s", d.Run, d.Workspace, workspace)}
	}
	return d, nil
}

// reportVerify prints verify's result and returns its exit.
func reportVerify(cmd *cobra.Command, asJSON bool, d gateway.SignedApproval, err error) error {
	out := cmd.OutOrStdout()
	if asJSON {
		code, msg := Exit(err)
		res := map[string]any{"valid": err == nil, "exit_code": code}
		if msg != "" {
			res["error"] = msg
		}
		if err == nil {
			res["approval"] = d
		}
		if perr := printJSON(out, res); perr != nil {
			return perr
		}
		if err != nil {
			return &ExitError{Code: code, Err: err, printed: true}
		}
		return nil
	}
	if err != nil {
		return err
	}
	var who []string
	for _, a := range d.Approvers {
		who = append(who, string(a.UserID))
	}
	fmt.Fprintf(out, "valid: run %s in %s, plan sha256 %s, approved at %s by %s (key %s)\n",
		d.Run, d.Workspace, d.PlanSHA256, d.ApprovedAt.Format("2006-01-02 15:04:05Z07:00"), strings.Join(who, ", "), d.KeyID)
	return nil
}

// resolvePublicKey is --public-key, else the gateway's key.
func resolvePublicKey(cmd *cobra.Command, cf *clientFlags, flag string) (ed25519.PublicKey, error) {
	if flag != "" {
		return parsePublicKey(flag)
	}
	c, err := cf.client(false)
	if err != nil {
		return nil, err
	}
	ctx, cancel := callCtx(cmd)
	defer cancel()
	info, err := c.ApprovalKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetch the approval key from %s (or pass --public-key): %w", c.BaseURL, err)
	}
	return parsePublicKey(info.PublicKey)
}

// parsePublicKey reads a 32-byte Ed25519 public key in base64 or hex.
func parsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	key, err := hex.DecodeString(s)
	if err != nil || len(key) != ed25519.PublicKeySize {
		key, err = base64.StdEncoding.DecodeString(s)
	}
	if err != nil || len(key) != ed25519.PublicKeySize {
		return nil, usageErrorf("public key: want base64 or hex of %d bytes", ed25519.PublicKeySize)
	}
	return key, nil
}

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "keys",
		Short:   "Show the keys Gatehouse signs with",
		Example: "  gatehouse keys public",
	}
	var (
		cf      clientFlags
		dataDir string
		asJSON  bool
	)
	public := &cobra.Command{
		Use:   "public",
		Short: "Print the public half of the approval key (base64), which verify checks approvals against",
		Long: `Print the public half of the gateway's approval key, base64 (standard,
padded) of the 32-byte Ed25519 public key, on one line.

It reads the key the gateway uses: ` + app.EnvApprovalKey + ` (base64 of the
32-byte seed) or, for gatehouse dev, <data-dir>/approval.key, generated on
its first start. With --url it asks that gateway instead
(GET /api/v1/approval-key, no token needed).`,
		Example: `  gatehouse keys public --data-dir ./.gatehouse
  gatehouse keys public --url https://gatehouse.example.com --json`,
		Args: cobra.NoArgs,
	}
	public.RunE = withJSONErrors(&asJSON, func(cmd *cobra.Command, _ []string) error {
		info, err := publicKeyInfo(cmd, &cf, dataDir)
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(cmd.OutOrStdout(), info)
		}
		fmt.Fprintln(cmd.OutOrStdout(), info.PublicKey)
		return nil
	})
	cf.bind(public)
	public.Flags().StringVar(&dataDir, "data-dir", envOr("GATEHOUSE_DATA_DIR", "./.gatehouse"), "data directory of gatehouse dev (env GATEHOUSE_DATA_DIR)")
	bindJSON(public, &asJSON)
	cmd.AddCommand(public)
	return cmd
}

// publicKeyInfo is the approval key's public half: from the gateway when
// --url is given, else from the key this machine's gateway uses.
func publicKeyInfo(cmd *cobra.Command, cf *clientFlags, dataDir string) (gateway.ApprovalKeyInfo, error) {
	if cmd.Flags().Changed("url") {
		c, err := cf.client(false)
		if err != nil {
			return gateway.ApprovalKeyInfo{}, err
		}
		ctx, cancel := callCtx(cmd)
		defer cancel()
		return c.ApprovalKey(ctx)
	}
	key, err := app.ApprovalKey(dataDir, false)
	if err != nil {
		return gateway.ApprovalKeyInfo{}, err
	}
	pub := key.Public().(ed25519.PublicKey)
	return gateway.ApprovalKeyInfo{Algorithm: "ed25519", KeyID: gateway.KeyID(pub), PublicKey: base64.StdEncoding.EncodeToString(pub)}, nil
}

// envOr returns the environment variable's value, or def when unset.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
