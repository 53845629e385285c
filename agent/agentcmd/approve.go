package agentcmd

import (
	"context"
	"fmt"
)

func newApprove(stdio IO) *Command {
	return newAnswer(stdio, true)
}

// newAnswer is approve (yes) or deny.
func newAnswer(stdio IO, yes bool) *Command {
	var o ownerFlags
	use, short, long := "approve [SESSION]", "Let in a session that waits for your approval",
		`approve lets in a session that waits for your approval (consent: approve):
porthole-agent status shows who asks, from which fleet and why. SESSION is the
session's id as status shows it, or a part of it that no other waiting session
shares; with only one waiting, it may be left out.`
	if !yes {
		use, short, long = "deny [SESSION]", "Refuse a session that waits for your approval",
			`deny refuses a session that waits for your approval (consent: approve); the
engineer is told "the owner denied the request". SESSION is as for approve. A
session you leave unanswered is denied by itself after approval_timeout
(default 5 minutes).`
	}
	cmd := &Command{
		Use: use, Short: short, Long: long,
		args: maxArgs(1),
	}
	cmd.Run = func(ctx context.Context, args []string) error {
		c, err := o.client(cmd)
		if err != nil {
			return err
		}
		id := ""
		if len(args) == 1 {
			id = args[0]
		}
		ses, err := c.Answer(ctx, id, yes)
		if err != nil {
			return err
		}
		if yes {
			_, err = fmt.Fprintf(stdio.Out, "approved %s: the engineer is connecting (porthole-agent revoke ends it at any time)\n", ses)
		} else {
			_, err = fmt.Fprintf(stdio.Out, "denied %s\n", ses)
		}
		return err
	}
	o.register(cmd, false)
	return cmd
}
