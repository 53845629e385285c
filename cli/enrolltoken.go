package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/spf13/cobra"
)

func newEnrollToken(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "enroll-token",
		Aliases: []string{"enroll-tokens"},
		Short:   "Make, list and revoke the tokens new devices enroll with",
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(newEnrollTokenCreate(a), newEnrollTokenList(a), newEnrollTokenRm(a))
	return cmd
}

func newEnrollTokenCreate(a *app) *cobra.Command {
	var (
		fleet  string
		uses   int
		ttl    = durationFlag(24 * time.Hour)
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "create --fleet FLEET [--uses N] [--ttl DURATION]",
		Short: "Make a token that enrolls devices into a fleet",
		Long: `Make a token that enrolls devices into a fleet, good for --uses devices within
--ttl. Standard output gets the token alone (or, with --json, the token's
details as a JSON object), so a script can capture it; standard error gets the
command to run on each device, with the server's certificate fingerprint when
one is pinned. The server never shows the token again.`,
		Example: `  porthole enroll-token create --fleet acme
  porthole enroll-token create --fleet acme --uses 20 --ttl 7d
  TOKEN=$(porthole enroll-token create --fleet acme)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if uses < 1 {
				return fmt.Errorf("--uses is %d; a token must enroll at least one device", uses)
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			tok, err := c.CreateEnrollmentToken(cmd.Context(), fleet, apitype.CreateEnrollmentTokenRequest{
				Uses:       uses,
				TTLSeconds: int64((time.Duration(ttl) + time.Second - 1) / time.Second),
			})
			if err != nil {
				return err
			}
			if asJSON {
				err = writeJSON(a.io.Out, tok)
			} else {
				_, err = fmt.Fprintln(a.io.Out, tok.Token)
			}
			if err != nil {
				return err
			}
			a.printEnrollHelp(a.io.Err, tok)
			return nil
		},
	}
	addFleetFlag(a, cmd, &fleet, true)
	cmd.Flags().IntVar(&uses, "uses", 1, "how many devices the token may enroll")
	cmd.Flags().Var(&ttl, "ttl", "how long the token is good for, such as 30m, 12h or 7d")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the token as a JSON object")
	return cmd
}

// printEnrollHelp says what the token is good for and the exact command
// that enrolls a device with it.
func (a *app) printEnrollHelp(w io.Writer, tok *apitype.EnrollmentToken) {
	plural := "s"
	if tok.MaxUses == 1 {
		plural = ""
	}
	fmt.Fprintf(w, "\nenrollment token for fleet %s: enrolls %d device%s until %s (%s).\n",
		tok.Fleet, tok.MaxUses, plural, formatTime(tok.ExpiresAt), untilString(tok.ExpiresAt, a.now()))
	fmt.Fprintf(w, "On each device, run (with the device's own name):\n\n  porthole-agent enroll --server %s --token %s", a.target.server, tok.Token)
	if a.target.fingerprint != "" {
		fmt.Fprintf(w, " --fingerprint %s", a.target.fingerprint)
	}
	fmt.Fprintf(w, " --name <name>\n\n")
}

func newEnrollTokenList(a *app) *cobra.Command {
	var fleet string
	cmd := listing[apitype.EnrollmentToken]{
		fetch: func(ctx context.Context, c *apiclient.Client) ([]apitype.EnrollmentToken, error) {
			return c.EnrollmentTokens(ctx, fleet)
		},
		compare: func(x, y apitype.EnrollmentToken) int { return x.CreatedAt.Compare(y.CreatedAt) },
		none:    "no enrollment tokens",
		headers: []string{"ID", "FLEET", "USES LEFT", "CREATED", "EXPIRES"},
		row: func(t apitype.EnrollmentToken) []string {
			return []string{t.ID, t.Fleet, fmt.Sprintf("%d of %d", t.UsesLeft, t.MaxUses),
				formatTime(t.CreatedAt), formatTime(t.ExpiresAt) + " (" + untilString(t.ExpiresAt, a.now()) + ")"}
		},
	}.attach(a, &cobra.Command{
		Use:     "list --fleet FLEET",
		Aliases: []string{"ls"},
		Short:   "List a fleet's enrollment tokens (not their secrets)",
		Args:    cobra.NoArgs,
	})
	addFleetFlag(a, cmd, &fleet, true)
	return cmd
}

func newEnrollTokenRm(a *app) *cobra.Command {
	var fleet string
	cmd := &cobra.Command{
		Use:     "rm --fleet FLEET ID",
		Aliases: []string{"revoke"},
		Short:   "Revoke an enrollment token; devices enrolled with it stay enrolled",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withClient(func(c *apiclient.Client) error {
				return c.DeleteEnrollmentToken(cmd.Context(), fleet, args[0])
			}, "revoked enrollment token %s of fleet %s", args[0], fleet)
		},
	}
	addFleetFlag(a, cmd, &fleet, true)
	return cmd
}
