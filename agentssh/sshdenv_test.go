package agentssh

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
)

// addrConn is a connection that gives other addresses than its own, as a
// relay channel does.
type addrConn struct {
	net.Conn
	local, remote net.Addr
}

func (c addrConn) LocalAddr() net.Addr  { return c.local }
func (c addrConn) RemoteAddr() net.Addr { return c.remote }

// TestSSHClientEnv: commands get SSH_CLIENT and SSH_CONNECTION from the
// connection's addresses, as sshd gives them; an address that is not an IP
// address and port counts as 0.0.0.0 port 0.
func TestSSHClientEnv(t *testing.T) {
	for _, tt := range []struct {
		name          string
		local, remote net.Addr
		client, conn  string
	}{
		{"a relay channel", channelAddr{}, channelAddr{}, "0.0.0.0 0 0", "0.0.0.0 0 0.0.0.0 0"},
		{"TCP", &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 22}, &net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 50123},
			"198.51.100.7 50123 22", "198.51.100.7 50123 192.0.2.1 22"},
		{"IPv6", &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 443}, &net.TCPAddr{IP: net.ParseIP("2001:db8::2"), Port: 40000},
			"2001:db8::2 40000 443", "2001:db8::2 40000 2001:db8::1 443"},
		{"an address by its string", &net.UnixAddr{Name: "relay.sock", Net: "unix"}, addrString("203.0.113.9:61000"),
			"203.0.113.9 61000 0", "203.0.113.9 61000 0.0.0.0 0"},
		{"no address", nil, nil, "0.0.0.0 0 0", "0.0.0.0 0 0.0.0.0 0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			srv := e.server(t, nil)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				nc, err := ln.Accept()
				if err == nil {
					srv.ServeConn(ctx, addrConn{Conn: nc, local: tt.local, remote: tt.remote}, testSession)
				}
			}()
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			c, err := dialSSH(nc, e.clientConfig(e.certAuth(t)))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			out, _, err := run(t, c, `printf '%s\n%s\n' "$SSH_CLIENT" "$SSH_CONNECTION"`, nil)
			if want := tt.client + "\n" + tt.conn + "\n"; err != nil || out != want {
				t.Errorf("SSH_CLIENT and SSH_CONNECTION:\n%s(%v); want\n%s", out, err, want)
			}
		})
	}
}

// addrString is an address known only by its string.
type addrString string

func (a addrString) Network() string { return "relay" }
func (a addrString) String() string  { return string(a) }

// TestBashrc: bash reads ~/.bashrc for a command, as it does under sshd
// (it looks for SSH_CLIENT), so the engineer's `porthole ssh dev --
// command` finds what the account's ~/.bashrc sets up.
func TestBashrc(t *testing.T) {
	if _, err := os.Stat("/bin/bash"); err != nil {
		t.Skip("no /bin/bash")
	}
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".bashrc"), []byte("export PORTHOLE_BASHRC=read\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	passwd := filepath.Join(t.TempDir(), "passwd")
	if err := writePasswd(passwd, home, "/bin/bash"); err != nil {
		t.Fatal(err)
	}
	saved := passwdFile
	passwdFile = passwd
	t.Cleanup(func() { passwdFile = saved })

	e := newEnv(t)
	// RunAs the agent's own user: root, as the agent runs.
	c, _ := e.login(t, e.server(t, nil))
	out, errOut, err := run(t, c, `echo "$0 ${PORTHOLE_BASHRC:-not read}"`, nil)
	if err != nil || out != "bash read\n" {
		t.Errorf("bash -c printed %q (%v, %q); want it to have read ~/.bashrc", out, err, errOut)
	}
}

// dialSSH logs in over nc.
func dialSSH(nc net.Conn, cc *ssh.ClientConfig) (*ssh.Client, error) {
	c, chans, reqs, err := ssh.NewClientConn(nc, "dev1.porthole:22", cc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return ssh.NewClient(c, chans, reqs), nil
}
