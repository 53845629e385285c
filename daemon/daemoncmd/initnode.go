package daemoncmd

import (
	"github.com/porthole/porthole/daemon"
	"github.com/spf13/cobra"
)

func newInitNode(stdio IO) *cobra.Command {
	var opts daemon.InitNodeOptions
	cmd := &cobra.Command{
		Use:   "init-node --from API_DATA_DIR --data DIR --relay-host HOST",
		Short: "Make the data dir of a relay or broker node, without the signing keys, from an API node's",
		Long: `init-node runs on an API node and makes the data dir of a node whose roles
leave out api (a relay node, a broker node): the public halves of the control
key, user CA and host CA, the TLS certificate and key every node shows, the
deployment's node secret, and a new relay host key with a host certificate the
host CA signs for --relay-host (the host of the node's relay.public_addr),
valid for --valid-for. It copies no signing key: such a node cannot sign a
command to a device nor certify an engineer, and portholed refuses to start a
node without the api role on a data dir that holds one.

Copy the new dir to the node and point its data_dir there. Make it again, and
replace it, before the certificate ends (the node warns a month ahead).`,
		Example: `  portholed init-node --from /var/lib/portholed --data ./relay-1 --relay-host relay-1.example.com
  rsync -a ./relay-1/ relay-1.example.com:/var/lib/portholed/`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return daemon.InitNode(opts, stdio.Out) },
	}
	f := cmd.Flags()
	f.StringVar(&opts.From, "from", "", "an API node's data dir, which holds the signing keys (required)")
	f.StringVar(&opts.DataDir, "data", "", "the new node's data dir, made 0700 (required)")
	f.StringSliceVar(&opts.RelayHosts, "relay-host", nil, "host name or address devices and engineers reach the node's relay at (repeatable; required)")
	f.DurationVar(&opts.ValidFor, "valid-for", 0, "how long the relay's host certificate lasts (default a year)")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("data")
	_ = cmd.MarkFlagRequired("relay-host")
	return cmd
}
