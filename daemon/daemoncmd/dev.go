package daemoncmd

import (
	"os/signal"
	"syscall"

	"github.com/porthole/porthole/daemon"
	"github.com/spf13/cobra"
)

func newDev(stdio IO) *cobra.Command {
	var opts daemon.DevOptions
	var verbose bool
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a complete throw-away server on loopback, for trying Porthole",
		Long: `dev runs every role of the server in one process with state in a temporary
directory that is deleted on exit. It makes an admin, a fleet and a multi-use
enrollment token, and prints PORTHOLE_SERVER=, PORTHOLE_TOKEN= and
PORTHOLE_FINGERPRINT= lines to export, and the exact porthole-agent enroll
command to run. Never use it for real devices.`,
		Example: `  portholed dev
  portholed dev --listen 127.0.0.1:0     # a free port`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if verbose {
				opts.Logger = daemon.NewLogger(stdio.Err, daemon.LogConfig{Level: "debug"})
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return daemon.Dev(ctx, opts, func(c daemon.DevCredentials) {
				daemon.PrintDevBanner(stdio.Out, c)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Host, "host", "127.0.0.1", "IP address to listen on and tell devices (e.g. a bridge that network namespaces reach)")
	f.StringVar(&opts.Listen, "listen", "", "API address (default HOST:8443; HOST:0 picks a free port)")
	f.StringVar(&opts.BrokerListen, "broker-listen", "", "MQTT broker address for devices (default HOST:0, a free port)")
	f.StringVar(&opts.RelayListen, "relay-listen", "", "SSH relay address (default HOST:0, a free port)")
	f.IntVar(&opts.PublicPort, "public-port", 0, "port devices and engineers are told for the API, MQTT and the relay, when they reach the server through a proxy or forwarded port (default the one --listen got)")
	f.StringVar(&opts.Fleet, "fleet", "dev", "name of the fleet to make")
	f.BoolVarP(&verbose, "verbose", "v", false, "print the server log to stderr")
	return cmd
}
