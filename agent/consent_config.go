package agent

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"

	"github.com/porthole/porthole/agent/agentconsent"
)

// DefaultSocket is where the running agent takes the owner's commands.
const DefaultSocket = "/run/porthole/agent.sock"

// validateConsent checks the consent keys of the config.
func (c *Config) validateConsent() error {
	if err := c.Consent.Validate(); err != nil {
		return err
	}
	if c.Socket != "" && !filepath.IsAbs(c.Socket) {
		return fmt.Errorf("socket %q must be an absolute path, like %s", c.Socket, DefaultSocket)
	}
	if c.SocketGroup != "" && !validUserName(c.SocketGroup) {
		return fmt.Errorf("socket_group %q is not a group name", c.SocketGroup)
	}
	if c.LocalUI != "" {
		if _, err := checkLocalUI(c.LocalUI); err != nil {
			return fmt.Errorf("local_ui: %w", err)
		}
	}
	return nil
}

// ConsentMode is the configured mode with its default.
func (c *Config) ConsentMode() agentconsent.Mode { return c.Consent.ModeOrDefault() }

// SocketPath is the configured socket with its default.
func (c *Config) SocketPath() string {
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
