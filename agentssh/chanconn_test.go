package agentssh

import (
	"context"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/internal/testnet"
	"github.com/porthole/porthole/internal/testwait"
)

// outerChannels makes an SSH connection over loopback (standing in for
// the relay) and returns a channel of it from each side: what the
// engineer's client opens and what the agent accepts.
func outerChannels(t *testing.T) (client, agent ssh.Channel) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(newSigner(t))
	accepted := make(chan ssh.Channel, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
		if err != nil {
			return
		}
		t.Cleanup(func() { sc.Close() })
		go ssh.DiscardRequests(reqs)
		for nch := range chans {
			ch, reqs, err := nch.Accept()
			if err != nil {
				return
			}
			go ssh.DiscardRequests(reqs)
			accepted <- ch
		}
	}()
	c, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{User: "x", HostKeyCallback: ssh.InsecureIgnoreHostKey()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ch, reqs, err := c.OpenChannel("forwarded-tcpip", nil)
	if err != nil {
		t.Fatal(err)
	}
	go ssh.DiscardRequests(reqs)
	select {
	case a := <-accepted:
		return ch, a
	case <-time.After(10 * time.Second):
		t.Fatal("no channel")
		return nil, nil
	}
}

// TestServeOverChannel: the agent's case, SSH inside an SSH channel.
func TestServeOverChannel(t *testing.T) {
	e := newEnv(t)
	srv := e.server(t, nil)
	cch, ach := outerChannels(t)
	done := make(chan error, 1)
	go func() { done <- srv.ServeConn(context.Background(), ChannelConn(ach, nil, nil), testSession) }()
	c, chans, reqs, err := ssh.NewClientConn(ChannelConn(cch, nil, nil), "dev1.porthole:22", e.clientConfig(e.certAuth(t)))
	if err != nil {
		t.Fatal(err)
	}
	client := ssh.NewClient(c, chans, reqs)
	out, _, err := run(t, client, "echo inside", nil)
	if err != nil || out != "inside\n" {
		t.Errorf("exec over a channel: %q, %v", out, err)
	}
	sftpRoundTrip(t, client, t.TempDir())
	client.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeConn = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeConn did not return after the engineer hung up")
	}
}

// TestChannelConnDeadline: a deadline that passes closes the channel, so
// a silent peer cannot hold a handshake open.
func TestChannelConnDeadline(t *testing.T) {
	e := newEnv(t)
	srv := e.server(t, func(c *Config) { c.HandshakeTimeout = 100 * time.Millisecond })
	_, ach := outerChannels(t)
	conn := ChannelConn(ach, nil, nil)
	if conn.RemoteAddr().Network() != "ssh-channel" {
		t.Errorf("RemoteAddr = %v", conn.RemoteAddr())
	}
	err := srv.ServeConn(context.Background(), conn, testSession)
	if err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Errorf("ServeConn = %v; want a login timeout", err)
	}

	_, ach = outerChannels(t)
	conn = ChannelConn(ach, nil, nil)
	conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	start := time.Now()
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("read past the deadline succeeded")
	}
	if time.Since(start) > 5*time.Second {
		t.Error("the deadline did not end the read")
	}
}

// TestNoGoroutineLeft: once an engineer hangs up, nothing of the
// connection keeps running.
func TestNoGoroutineLeft(t *testing.T) {
	port := testnet.Echo(t).Port
	e := newEnv(t)
	srv := e.server(t, func(c *Config) { c.AllowPorts = []int{port} })
	before := runtime.NumGoroutine()
	c, served := e.login(t, srv)
	if _, _, err := run(t, c, "echo hi", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	sc, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.ReadDir("/"); err != nil {
		t.Fatal(err)
	}
	fc, err := c.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	fc.Write([]byte("x"))
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start("sleep 100"); err != nil {
		t.Fatal(err)
	}
	c.Close() // with a command, an SFTP session and a forward still open
	if err := served.wait(t); err != nil {
		t.Fatal(err)
	}
	testwait.GoroutinesAtMost(t, before, 5*time.Second)
}
