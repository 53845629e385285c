package agentssh

import (
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testnet"
	"github.com/porthole/porthole/internal/testwait"
)

func TestDirectTCPIP(t *testing.T) {
	allowed, other := testnet.Echo(t).Port, testnet.Echo(t).Port
	e := newEnv(t)
	c, _ := e.login(t, e.server(t, func(c *Config) { c.AllowPorts = []int{allowed} }))
	ap, op := strconv.Itoa(allowed), strconv.Itoa(other)

	for _, host := range []string{"127.0.0.1", "localhost"} {
		conn, err := c.Dial("tcp", net.JoinHostPort(host, ap))
		if err != nil {
			t.Fatalf("forward to %s:%s: %v", host, ap, err)
		}
		io.WriteString(conn, "ping")
		buf := make([]byte, 4)
		if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
			t.Errorf("through %s: %q, %v", host, buf, err)
		}
		conn.Close()
	}

	for _, tt := range []struct{ target, want string }{
		{net.JoinHostPort("127.0.0.1", op), "not among the ports"},
		{net.JoinHostPort("localhost", op), "not among the ports"},
		{net.JoinHostPort("192.0.2.1", ap), "device's own ports"},   // another host
		{net.JoinHostPort("127.0.0.2", ap), "device's own ports"},   // loopback, but not the address itself
		{net.JoinHostPort("example.com", ap), "device's own ports"}, // names are not resolved
		{net.JoinHostPort("::ffff:127.0.0.1", ap), "device's own ports"},
	} {
		conn, err := c.Dial("tcp", tt.target)
		if err == nil {
			conn.Close()
			t.Errorf("forward to %s accepted", tt.target)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("forward to %s: %v; want a reason containing %q", tt.target, err, tt.want)
		}
	}

	testwait.For(t, 10*time.Second, "forwards to be recorded", func() bool { return len(e.rec.forwardList()) == 8 })
	var opened int
	for _, f := range e.rec.forwardList() {
		if f.Refused == "" {
			opened++
			if f.In != 4 || f.Out != 4 {
				t.Errorf("recorded %+v; want 4 bytes each way", f)
			}
		}
	}
	if opened != 2 {
		t.Errorf("recorded %d open forwards; want 2", opened)
	}
}

// TestDirectTCPIPNoPorts: with no allowed ports, nothing can be reached.
func TestDirectTCPIPNoPorts(t *testing.T) {
	port := testnet.Echo(t).Port
	e := newEnv(t)
	c, _ := e.login(t, e.server(t, nil))
	_, err := c.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err == nil || !strings.Contains(err.Error(), "(none)") {
		t.Errorf("forward with no allowed ports: %v", err)
	}
}

func TestDirectTCPIPNothingListens(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	e := newEnv(t)
	c, _ := e.login(t, e.server(t, func(c *Config) { c.AllowPorts = []int{port} }))
	_, err = c.Dial("tcp", net.JoinHostPort("localhost", strconv.Itoa(port)))
	if err == nil || !strings.Contains(err.Error(), "nothing answers") {
		t.Errorf("forward to a closed port: %v", err)
	}
}

// TestDirectTCPIPSessionPorts: a session reaches only the ports it was
// opened for, within the owner's list; it cannot widen that list, and a
// session opened for no port reaches none (finding 7 of issue 11).
func TestDirectTCPIPSessionPorts(t *testing.T) {
	asked, notAsked, ownerRefuses := testnet.Echo(t).Port, testnet.Echo(t).Port, testnet.Echo(t).Port
	e := newEnv(t)
	c, _ := e.login(t, e.server(t, func(c *Config) {
		c.AllowPorts = []int{asked, notAsked}
		c.SessionPorts = func(s string) []int {
			if s != testSession {
				t.Errorf("SessionPorts asked for %q", s)
			}
			return []int{asked, ownerRefuses}
		}
	}))
	conn, err := c.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(asked)))
	if err != nil {
		t.Fatalf("forward to a port the session asked for: %v", err)
	}
	conn.Close()
	for _, tt := range []struct {
		port int
		want string
	}{
		{notAsked, "was not asked for when this session was opened"},
		{ownerRefuses, "not among the ports this device's owner allows"},
	} {
		if conn, err := c.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(tt.port))); err == nil {
			conn.Close()
			t.Errorf("forward to %d accepted", tt.port)
		} else if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("forward to %d: %v; want %q", tt.port, err, tt.want)
		}
	}

	c, _ = e.login(t, e.server(t, func(c *Config) {
		c.AllowPorts = []int{asked}
		c.SessionPorts = func(string) []int { return nil }
	}))
	if conn, err := c.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(asked))); err == nil {
		conn.Close()
		t.Error("a session opened for no port reached one")
	} else if !strings.Contains(err.Error(), "(it asked for none)") {
		t.Errorf("forward in a session without ports: %v", err)
	}
}
