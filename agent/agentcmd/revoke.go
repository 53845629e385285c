package agentcmd

import (
	"context"
	"fmt"
)

func newRevoke(stdio IO) *Command {
	var o ownerFlags
	cmd := &Command{
		Use:   "revoke",
		Short: "End every session now and close the support window",
		Long: `revoke is the owner's kill switch: the running agent ends every support
session at once (the engineers' shells, commands, file copies and forwards,
and the connection to the relay), closes the support window so its code no
longer works, and tells the server. The engineers see "the owner of DEVICE
ended this session".`,
	}
	cmd.Run = func(ctx context.Context, _ []string) error {
		c, err := o.client(cmd)
		if err != nil {
			return err
		}
		a, err := c.Revoke(ctx)
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
	}
	o.register(cmd, false)
	return cmd
}
