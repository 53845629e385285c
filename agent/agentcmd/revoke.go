package agentcmd

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newRevoke(stdio IO) *cobra.Command {
	var o ownerFlags
	cmd := &cobra.Command{
		Use:   "revoke",
		Short: "End every session now and close the support window",
		Long: `revoke is the owner's kill switch: the running agent ends every support
session at once (the engineers' shells, commands, file copies and forwards,
and the connection to the relay), closes the support window so its code no
longer works, and tells the server. The engineers see "the owner of DEVICE
ended this session".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := o.client(cmd)
			if err != nil {
				return err
			}
			a, err := c.Revoke(cmd.Context())
			if err != nil {
				return err
			}
			switch {
			case a.Sessions == 0 && !a.WindowClosed:
				_, err = fmt.Fprintln(stdio.Out, "nothing was open: no session, no support window")
			default:
				msg := fmt.Sprintf("ended %d session(s)", a.Sessions)
				if a.WindowClosed {
					msg += " and closed the support window"
				}
				_, err = fmt.Fprintln(stdio.Out, msg)
			}
			return err
		},
	}
	o.register(cmd, false)
	return cmd
}
