package daemon

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/porthole/porthole/ca"
)

// Which keys a node holds follows from its roles. A node with the api role
// loads the whole data dir `portholed init` made: it signs the devices'
// open and close commands (control key), certifies engineers (user CA) and
// devices and relays (host CA). A node without it (relay, broker, or both)
// must hold none of these: the relay is trusted only to join legs, and a
// compromised relay node that could sign would open sessions and certify
// engineers of its own. Such a node loads a data dir made for it on an API
// node (`portholed init-node`, InitNode): the public keys it checks with,
// the TLS identity every node shows, the node secret, and a relay host key
// of its own with the host certificate the host CA issued. What it did
// with the keys it now goes without:
//   - closing a session that its device must hear of (relay_lost, a device
//     gone from its relay, a limit its sweeper found) is recorded in the
//     store with the close command due, and an API node sends the command
//     as it hears the change, or at its next sweep (session.Manager.SendDue);
//   - logging in to the broker node (broker.node) takes the node secret,
//     no longer a password derived from the control key.
//
// The relay's host certificate is issued by an operator's command on an
// API node rather than online through the store: any role that can reach
// the database could then ask the host CA for certificates, and a node
// that cannot reach an API node could not start. Its life is a year; the
// node warns a month ahead and refuses to start once it is over.

// relayCertWarn is how long before its relay host certificate ends a node
// without the api role starts warning.
const relayCertWarn = 30 * 24 * time.Hour

// loadKeys loads the keys the node's roles call for from cfg.DataDir.
func loadKeys(cfg *Config, logger *slog.Logger, now time.Time) (*ca.Keys, error) {
	if cfg.Has(RoleAPI) {
		keys, err := ca.Load(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("loading keys from %s: %w", cfg.DataDir, err)
		}
		return keys, nil
	}
	roles := strings.Join(cfg.ServedRoles(), ", ")
	keys, err := ca.LoadNode(cfg.DataDir)
	switch {
	case errors.Is(err, ca.ErrSigningKeysHere):
		return nil, fmt.Errorf("this node's roles (%s) leave out api, but data_dir %s holds the deployment's signing keys (%s), "+
			"which only API nodes may hold: a relay or broker node that holds them could sign open commands and certify engineers. "+
			"Make this node a data dir of its own on an API node (portholed init-node --from <the API node's data dir> --data <new dir> "+
			"--relay-host <this node's relay host name>), copy it here and point data_dir at it",
			roles, cfg.DataDir, strings.Join(ca.SigningKeysIn(cfg.DataDir), ", "))
	case err != nil:
		return nil, fmt.Errorf("loading this node's keys from %s (roles %s: a data dir made by portholed init-node on an API node): %w", cfg.DataDir, roles, err)
	}
	if cfg.Has(RoleRelay) {
		if err := checkRelayCert(keys, cfg, logger, now); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// checkRelayCert checks that a node's relay host certificate is valid now
// for the host devices and engineers dial (relay.public_addr), and warns
// when it ends soon.
func checkRelayCert(keys *ca.Keys, cfg *Config, logger *slog.Logger, now time.Time) error {
	cert := keys.RelayHostCert
	path := filepath.Join(cfg.DataDir, ca.RelayHostCertFile)
	remake := "make this node a new data dir on an API node: portholed init-node --from <the API node's data dir> --data <new dir> --relay-host <host>"
	ends := time.Unix(int64(cert.ValidBefore), 0)
	if !now.Before(ends) {
		return fmt.Errorf("the relay's host certificate %s ended at %s, and devices and engineers refuse it: %s", path, ends.Format(time.RFC3339), remake)
	}
	host, _, err := net.SplitHostPort(cfg.Relay.PublicAddr)
	if err != nil {
		return fmt.Errorf("relay.public_addr %q is not host:port: %w", cfg.Relay.PublicAddr, err)
	}
	if !slices.Contains(cert.ValidPrincipals, host) {
		return fmt.Errorf("the relay's host certificate %s is for %s, not for %s (relay.public_addr), which devices and engineers dial and check it against: %s",
			path, strings.Join(cert.ValidPrincipals, ", "), host, remake)
	}
	if left := ends.Sub(now); left < relayCertWarn {
		logger.Warn("the relay's host certificate ends soon; devices and engineers refuse it after: "+remake, "file", path, "ends", ends, "left", left.Round(time.Hour))
	}
	return nil
}

// InitNodeOptions are the inputs of `portholed init-node`.
type InitNodeOptions struct {
	// From is an API node's data dir, holding the signing keys.
	From string
	// DataDir is the node's new data dir; it must not exist, or be empty.
	DataDir string
	// RelayHosts are the host names or addresses devices and engineers
	// reach the node's relay at: its relay.public_addr's host.
	RelayHosts []string
	// ValidFor is the relay host certificate's life. Zero: a year.
	ValidFor time.Duration
}

// InitNode makes the data dir of a node without the api role from an API
// node's (see loadKeys), and says on out what it wrote and what next.
func InitNode(opts InitNodeOptions, out io.Writer) error {
	switch {
	case opts.From == "":
		return errors.New("--from DIR is required: the data dir of an API node, which holds the signing keys")
	case opts.DataDir == "":
		return errors.New("--data DIR is required: the new node's data dir")
	case len(opts.RelayHosts) == 0:
		return errors.New("--relay-host is required: the host name devices and engineers reach the node's relay at (its relay.public_addr's host)")
	}
	keys, err := ca.Load(opts.From)
	if err != nil {
		return fmt.Errorf("loading the API node's keys from %s: %w", opts.From, err)
	}
	cert, err := ca.WriteNodeDir(keys, ca.NodeDir{Dir: opts.DataDir, RelayHosts: opts.RelayHosts, ValidFor: opts.ValidFor})
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(opts.DataDir)
	ends := time.Unix(int64(cert.ValidBefore), 0).UTC()
	fmt.Fprintf(out, "Node data dir made in %s: public keys, the TLS certificate, the node secret, and a relay host key\n", abs)
	fmt.Fprintf(out, "certified for %s until %s. It holds no signing key.\n\n", strings.Join(cert.ValidPrincipals, ", "), ends.Format("2006-01-02"))
	fmt.Fprintf(out, "Next: copy it to the node (it holds secrets: keep it 0700), set data_dir to it and roles without api\n")
	fmt.Fprintf(out, "(e.g. roles: [relay]) in the node's portholed.yaml, and run portholed serve there.\n")
	fmt.Fprintf(out, "Before %s, make it again and replace it.\n", ends.Add(-relayCertWarn).Format("2006-01-02"))
	return nil
}
