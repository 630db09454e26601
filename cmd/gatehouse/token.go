package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/config"
)

// newTokenCmd is `gatehouse token new|rotate`: static bearer tokens for
// automation (and people without SSO), kept in the config only as digests.
func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make a user's bearer token: printed once, kept in the config only as its token_sha256",
	}
	cmd.AddCommand(tokenVerb("new", false), tokenVerb("rotate", true))
	return cmd
}

func tokenVerb(name string, rotate bool) *cobra.Command {
	var cfgPath, user, expires string
	cmd := &cobra.Command{
		Use:  name,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (cfgPath == "") != (user == "") || (rotate && cfgPath == "") {
				if rotate {
					return fmt.Errorf("rotate needs --config FILE and --user ID")
				}
				return fmt.Errorf("--config and --user go together")
			}
			var exp time.Time
			if expires != "" {
				var err error
				if exp, err = config.ParseExpiry(expires, time.Now()); err != nil {
					return fmt.Errorf("--expires: %w", err)
				}
			}
			token, sum, err := config.NewToken()
			if err != nil {
				return err
			}
			if cfgPath != "" {
				if err := config.SetUserToken(cfgPath, user, sum, exp, rotate); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "token: %s\ntoken_sha256: %s\n", token, sum)
			if !exp.IsZero() {
				fmt.Fprintf(out, "token_expires: %s\n", exp.Format(time.RFC3339))
			}
			msg := "Give the token to its user now: it is shown only this once and stored nowhere. Put token_sha256 (and token_expires) in the user's config entry."
			if cfgPath != "" {
				msg = fmt.Sprintf("Written to user %s in %s. Give the token to them now: it is shown only this once and stored nowhere. "+
					"Processes read the config when they start: restart the gateway.", user, cfgPath)
				if rotate {
					msg += " Their previous token stops working then."
				}
			}
			fmt.Fprintln(cmd.ErrOrStderr(), msg)
			return nil
		},
	}
	if rotate {
		cmd.Short = "Replace a user's token in a config file with a fresh one"
		cmd.Example = "  gatehouse token rotate --config gatehouse.yaml --user ci-bot --expires 90d"
	} else {
		cmd.Short = "Make a fresh random token; with --config and --user, write its digest into that user's entry"
		cmd.Example = "  gatehouse token new                                   # print a token and its token_sha256\n" +
			"  gatehouse token new --config gatehouse.yaml --user alice --expires 2027-06-30T00:00:00Z"
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "config file to write the token's digest into (comments and layout are kept)")
	f.StringVar(&user, "user", "", "id of the user in --config who gets the token")
	f.StringVar(&expires, "expires", "", "when the token stops working: days (90d), a duration (720h) or an RFC 3339 time; default never")
	return cmd
}
