package cli

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/porthole/porthole/version"
)

// Root is porthole's command tree, for what documents it: the man pages and
// shell completions the packages ship. Run runs it.
func Root() *cobra.Command { return newRoot(&app{io: StdIO(), now: time.Now}) }

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "porthole",
		Short: "Reach devices behind NAT, only while their owners open the way",
		Long: `Porthole gives a support engineer a shell, file copy and port forwards on a
Linux device behind NAT or a firewall, only while the device's owner has opened
the way, and records everything done there where the owner can read it.

porthole is the engineer's command. The usual flow:

  porthole login https://porthole.example.com:8443   password and TOTP code; pins a
                                                      self-signed server certificate
  porthole devices                                    the devices you may reach
  porthole enroll-token create --fleet acme           a token, and the command to run
                                                      on a new device to enroll it

Environment:
  PORTHOLE_SERVER       server URL, instead of the one saved by login
  PORTHOLE_TOKEN        API token, instead of a login (for scripts and CI)
  PORTHOLE_FINGERPRINT  the server certificate's sha256:... fingerprint, for a
                        self-signed server, instead of the one pinned at login
  XDG_CONFIG_HOME       the login is kept in $XDG_CONFIG_HOME/porthole/config.json
                        (default ~/.config/porthole/config.json; on Windows
                        %LOCALAPPDATA%\porthole\config.json)
  HTTPS_PROXY           an HTTP CONNECT proxy, http://[USER:PASSWORD@]HOST:PORT, through
                        which to reach the server and its relay (the pin still holds)
  NO_PROXY              hosts reached directly (localhost and loopback always are)
  PORTHOLE_TRANSPORT    websocket: reach the relay by a WebSocket at once, for a network
                        that lets HTTPS out but not the relay's own protocol (tried
                        next anyway when that fails)

The environment wins over the saved login; --server wins over both. Results go
to standard output (list commands take --json for a stable JSON array);
prompts, progress and notes go to standard error.`,
		SilenceUsage:  true, // Run prints usage itself, and only for command-line mistakes
		SilenceErrors: true, // main prints the error, once
		Version:       version.Version,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			// cobra checks required flags only after this hook; check them
			// here so a missing one still counts as a command-line mistake.
			if err := cmd.ValidateRequiredFlags(); err != nil {
				return err
			}
			a.started = true
			return nil
		},
	}
	root.PersistentFlags().StringVar(&a.server, "server", "",
		"URL of the Porthole server (default $"+envServer+", else the one saved by login)")
	root.AddGroup(
		&cobra.Group{ID: "start", Title: "Getting started:"},
		&cobra.Group{ID: "fleet", Title: "Devices and fleets:"},
		&cobra.Group{ID: "reach", Title: "Reaching devices:"},
		&cobra.Group{ID: "admin", Title: "Accounts:"},
	)
	for _, c := range []struct {
		group string
		cmd   *cobra.Command
	}{
		{"start", newLogin(a)},
		{"start", newLogout(a)},
		{"start", newReauth(a)},
		{"fleet", newDevices(a)},
		{"fleet", newFleets(a)},
		{"fleet", newEnrollToken(a)},
		{"reach", newSSH(a)},
		{"reach", newSCP(a)},
		{"reach", newForward(a)},
		{"reach", newProxy(a)},
		{"reach", newSSHConfig(a)},
		{"reach", newRequests(a)},
		{"reach", newSessions(a)},
		{"reach", newClose(a)},
		{"reach", newAudit(a)},
		{"reach", newReplay(a)},
		{"admin", newUsers(a)},
		{"admin", newTokens(a)},
	} {
		c.cmd.GroupID = c.group
		root.AddCommand(c.cmd)
	}
	root.AddCommand(newVersion(a))
	root.AddCommand(newProxyReaper(a)) // hidden: porthole proxy starts it on Windows
	return root
}
