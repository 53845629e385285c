package agentcmd

import (
	"context"
	"flag"
	"fmt"

	"github.com/porthole/porthole/agent"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/proxydial"
)

// fingerprintEnv stands in for --fingerprint, as `portholed dev` prints it.
const fingerprintEnv = "PORTHOLE_FINGERPRINT"

func newEnroll(stdio IO, g *globals) *Command {
	var opts agent.EnrollOptions
	var proxy string
	cmd := &Command{
		Use:   "enroll --server URL --token TOKEN --name NAME [--state DIR] [--fingerprint sha256:...]",
		Short: "Enroll this device in a fleet, once",
		Long: `enroll makes this device known to a Porthole server, in the fleet the
enrollment token belongs to. A fleet owner makes the token with
  porthole enroll-token create
which also prints the server's certificate fingerprint.

The device makes its own ed25519 key in the state directory; the key never
leaves it. The server signs a host certificate for it, which engineers' tools
check, so nobody has to trust the device's key on first use. The state
directory must be private: it is created 0700, and one that other users can
write to is refused.

A network whose only way out is an HTTP proxy: give it with --proxy (as the
proxy key of agent.yaml gives it to porthole-agent run), or in HTTPS_PROXY.

If the server's certificate is self-signed (the default for a new server),
pin it with --fingerprint, or with PORTHOLE_FINGERPRINT in the environment.
Get the fingerprint from whoever runs the server, not from the server itself.

A device enrolls once. To enroll it again, remove its state directory (and ask
a fleet owner to delete the old device from the server).`,
		Example: `  porthole-agent enroll --server https://porthole.example.com:8443 \
      --token phe_... --name kitchen-amp
  porthole-agent enroll --server https://127.0.0.1:8443 --token phe_... \
      --fingerprint sha256:4f1c... --name dev1 --state ./dev1-state`,
	}
	cmd.Run = func(ctx context.Context, _ []string) error {
		if opts.Fingerprint == "" {
			opts.Fingerprint = stdio.Getenv(fingerprintEnv)
		}
		opts.Logger = g.logger(stdio)
		dial, err := netDial(proxy, stdio)
		if err != nil {
			return err
		}
		opts.NetDial = dial
		st, err := agent.Enroll(ctx, opts)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdio.Out, "enrolled %s in fleet %s (device id %s); state saved in %s\n",
			st.Enrollment.Name, st.Enrollment.Fleet, st.Enrollment.DeviceID, st.Dir)
		return err
	}
	f := cmd.flags()
	f.StringVar(&opts.Server, "server", "", "the Porthole server's address, https://host:port (required)")
	f.StringVar(&opts.Token, "token", "", "the enrollment token from a fleet owner (required)")
	f.StringVar(&opts.Name, "name", "", "this device's name in the fleet: a-z, 0-9 and -, up to 63 (required)")
	f.StringVar(&opts.StateDir, "state", agentstate.DefaultDir, "directory for the device's key and enrollment")
	f.StringVar(&opts.Fingerprint, "fingerprint", "", "pin the server's certificate, sha256:<hex> (default $"+fingerprintEnv+")")
	proxyFlag(f, &proxy)
	return cmd
}

// proxyFlag gives a command that reaches the server outside run --proxy,
// which stands for agent.yaml's proxy key.
func proxyFlag(f *flag.FlagSet, proxy *string) {
	f.StringVar(proxy, "proxy", "", "reach the server through this HTTP CONNECT proxy, http://[USER:PASSWORD@]HOST:PORT, or direct for none (default $HTTPS_PROXY)")
}

// netDial reaches the server by a --proxy setting, or the environment's
// proxy.
func netDial(proxy string, stdio IO) (proxydial.DialFunc, error) {
	pick, err := proxydial.ParseSetting(proxy, stdio.Getenv)
	if err != nil {
		return nil, fmt.Errorf("--proxy: %w", err)
	}
	return (&proxydial.Dialer{Proxy: pick}).DialContext, nil
}
