package agentcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/agent/agentupload"
	"github.com/porthole/porthole/apiclient"
)

func newOwnerLink(stdio IO) *Command {
	var renew, asJSON bool
	var proxy string
	cmd := &Command{
		Use:   "owner-link [--state DIR] [--new] [--json]",
		Short: "Print your read-only link to the server's record of this device",
		Long: `owner-link prints the link with which you, the device's owner, read what the
server holds about this device: its audit log (who asked for sessions, when
they opened and closed and why, codes tried, uploads) and the recordings of
every session, as this device sent them. The link reads nothing else and
changes nothing. Open it in a browser, or use the curl command printed with
it. The running agent gets the link from the server and renews it before it
expires (it lasts 30 days); porthole-agent status prints it too.

The link is a secret: whoever has it reads this device's record. --new (as
root: it signs with the device's key) makes a new one at once, and the old
one stops working.`,
		Example: "  porthole-agent owner-link\n  sudo porthole-agent owner-link --new",
	}
	stateFlag := ownerLinkStateFlag(cmd)
	cmd.Run = func(ctx context.Context, _ []string) error {
		stateDir := *stateFlag
		var l *agentupload.OwnerLink
		var err error
		if renew {
			st, lerr := agentstate.Load(stateDir)
			if lerr != nil {
				return lerr
			}
			enr := st.Enrollment
			dial, derr := netDial(proxy, stdio)
			if derr != nil {
				return derr
			}
			c, cerr := apiclient.New(enr.Server, apiclient.Options{Fingerprint: enr.Fingerprint, Timeout: 30 * time.Second, NetDial: dial,
				Device: &apiclient.DeviceCredentials{Fleet: enr.Fleet, Device: enr.Name, Key: st.PrivateKey}})
			if cerr != nil {
				return cerr
			}
			l, err = agentupload.RenewOwnerLink(ctx, st.Dir, enr.Server, enr.Fingerprint, c)
		} else {
			l, err = agentupload.ReadOwnerLink(stateDir)
		}
		if err != nil {
			return err
		}
		if asJSON {
			return printJSON(stdio.Out, l)
		}
		printOwnerLink(stdio.Out, l, time.Now())
		return nil
	}
	cmd.Flags.BoolVar(&renew, "new", false, "make a new link now; the old one stops working (needs the device key: run as root)")
	cmd.Flags.BoolVar(&asJSON, "json", false, "print the link as JSON")
	proxyFlag(cmd.Flags, &proxy)
	return cmd
}

// ownerLinkStateFlag gives cmd --state, where the owner link is kept.
func ownerLinkStateFlag(cmd *Command) *string {
	return cmd.flags().String("state", agentstate.DefaultDir, "the agent's state directory, which holds the owner link")
}

// printOwnerLink writes the link and how to use it.
func printOwnerLink(out io.Writer, l *agentupload.OwnerLink, now time.Time) {
	fmt.Fprintf(out, "Owner link (read only, until %s; keep it to yourself):\n  %s\n", ownerClock(l.ExpiresAt, now), l.URL)
	fmt.Fprintf(out, "  from a shell: %s\n", l.Curl("/api/v1/owner/audit"))
	if l.Fingerprint != "" {
		fmt.Fprintf(out, "  the server's certificate is its own, not a public one: check that it is %s\n", l.Fingerprint)
	}
}

// printStatusOwnerLink is status's line about the owner link.
func printStatusOwnerLink(out io.Writer, stateDir string, now time.Time) {
	l, err := agentupload.ReadOwnerLink(stateDir)
	switch {
	case errors.Is(err, agentupload.ErrNoOwnerLink):
		fmt.Fprintln(out, "Owner link: none yet (the agent gets one from the server as it runs)")
	case err != nil:
		fmt.Fprintf(out, "Owner link: %v\n", err)
	default:
		printOwnerLink(out, l, now)
	}
}
