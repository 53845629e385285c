package agentowner

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"

	"github.com/porthole/porthole/agent/agentstate"
)

// DefaultSocket is where the running agent takes the owner's commands.
const DefaultSocket = "/run/porthole/agent.sock"

// Config is the owner's section of agent.yaml: where the running agent
// takes the owner's commands. Its keys sit at the top level of the file
// (the agent's Config inlines it):
//
//	socket: /run/porthole/agent.sock  # the default
//	socket_group: porthole            # the default, if the group exists
//	local_ui: 127.0.0.1:7780          # no page unless set
type Config struct {
	// Socket is the unix socket on which the running agent takes the
	// owner's commands (porthole-agent request, status, approve, deny,
	// revoke). Empty: DefaultSocket.
	Socket string `yaml:"socket"`
	// SocketGroup is the group whose members may use the socket (mode
	// 0660), so an owner need not be root. Empty: agentstate.OwnerGroup
	// ("porthole") if it exists, else only the agent's own user.
	SocketGroup string `yaml:"socket_group"`
	// LocalUI is the loopback address (such as 127.0.0.1:7780) of the
	// owner's local web page: request support and read the code, see who
	// is connected, end the session, read the history. Empty: no page.
	LocalUI string `yaml:"local_ui"`
}

// Validate checks the owner's keys. It reads no files.
func (c Config) Validate() error {
	if c.Socket != "" && !filepath.IsAbs(c.Socket) {
		return fmt.Errorf("socket %q must be an absolute path, like %s", c.Socket, DefaultSocket)
	}
	if c.SocketGroup != "" && !agentstate.ValidUserName(c.SocketGroup) {
		return fmt.Errorf("socket_group %q is not a group name", c.SocketGroup)
	}
	if c.LocalUI != "" {
		if _, err := checkLocalUI(c.LocalUI); err != nil {
			return fmt.Errorf("local_ui: %w", err)
		}
	}
	return nil
}

// SocketPath is the configured socket with its default.
func (c Config) SocketPath() string {
	if c.Socket == "" {
		return DefaultSocket
	}
	return c.Socket
}

// checkLocalUI checks the local page's address: a loopback IP or
// "localhost" and a port. Anyone who reaches the page can read the support
// code and end sessions, so it never listens beyond the device itself.
func checkLocalUI(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%q is not host:port, like 127.0.0.1:7780", addr)
	}
	// Port 0 picks a free port; the agent logs it and status shows it.
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%q has no port in 0-65535", addr)
	}
	if host == "localhost" {
		return net.JoinHostPort("127.0.0.1", port), nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return "", errors.New("the page shows the support code and ends sessions, so it listens only on the device itself: use 127.0.0.1:PORT, [::1]:PORT or localhost:PORT")
	}
	return addr, nil
}
