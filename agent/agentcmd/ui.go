package agentcmd

import (
	"context"
	"errors"
	"fmt"

	"github.com/porthole/porthole/agent/agentowner"
	"github.com/porthole/porthole/humanize"
)

func newUI(stdio IO) *Command {
	var o ownerFlags
	cmd := &Command{
		Use:   "ui",
		Short: "Print a link that opens the owner's local page",
		Long: `ui asks the running agent for a link to its local page (local_ui: in the
config) and prints it. Open it in a browser on this device: it lets that
browser in, once, within ` + humanize.Duration(agentowner.PageLinkTTL) + `; run ui again for another browser.

The page shows the support code and can open a support window and end
sessions, so it is the owner's alone: only who may use the agent's socket
(root, or a member of the porthole group) gets a link, and the page refuses
everyone else, other local users and engineers' shells included.`,
	}
	cmd.Run = func(ctx context.Context, _ []string) error {
		c, err := o.client(cmd)
		if err != nil {
			return err
		}
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if st.Page == "" {
			return errors.New("the agent serves no local page: set local_ui: 127.0.0.1:7780 in its config and restart it")
		}
		_, err = fmt.Fprintln(stdio.Out, st.Page)
		return err
	}
	o.register(cmd, false)
	return cmd
}
