package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/spf13/cobra"
)

func newReauth(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "reauth",
		Short: "Enter a fresh authenticator code for your login (fleets that ask for one)",
		Long: `A fleet's policy may ask that a session on its devices be opened only with a
login that entered its authenticator (TOTP) code within the last few minutes
(porthole fleets policy show FLEET: reauth). porthole ssh, scp and forward ask
for the code on the terminal when it is needed; porthole proxy, run by ssh,
cannot: run porthole reauth first, then connect within the fleet's window.

When standard input is not a terminal, the code is read from it, one line.`,
		Example: "  porthole reauth\n  porthole reauth && ssh dev1.acme.porthole",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			return a.reauth(cmd.Context(), c, newPrompter(a.io.In, a.io.Err))
		},
	}
}

// reauth asks for the authenticator code and sends it.
func (a *app) reauth(ctx context.Context, c *apiclient.Client, ask *prompter) error {
	code, err := ask.line("Authenticator code (TOTP)", "")
	if err != nil {
		return err
	}
	_, err = c.Reauth(ctx, strings.ReplaceAll(code, " ", ""))
	switch {
	case apiclient.IsCode(err, apitype.CodeWrongCode):
		return &userError{msg: "re-authentication refused: " + err.Error(), err: err}
	case err != nil:
		return err
	}
	fmt.Fprintln(a.io.Err, "re-authenticated: your login entered a fresh code")
	return nil
}

// reauthAndRetry handles a session request the fleet's reauth rule
// refused (err, reauth_required): on a terminal it shows the refusal,
// asks for the authenticator code and sends it, and then the caller asks
// again, once. Without a terminal to ask on (under porthole proxy, from
// ssh, or with piped input) it fails in words that say to run porthole
// reauth first.
// again says what to do after that ("connect", "approve").
func (a *app) reauthAndRetry(ctx context.Context, c *apiclient.Client, err error, interactive bool, again string) error {
	msg := err.Error()
	if !interactive || terminalFd(a.io.In) < 0 {
		return &userError{msg: msg + "\nno terminal to ask for your code on here: run `porthole reauth` first, then " + again + " again within the fleet's window", err: err}
	}
	fmt.Fprintln(a.io.Err, msg)
	return a.reauth(ctx, c, newPrompter(a.io.In, a.io.Err))
}
