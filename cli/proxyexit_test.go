//go:build linux

package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/engineerssh"
	"github.com/porthole/porthole/internal/testwait"
)

// proxyExitLimit is how long porthole proxy may take to exit once ssh has
// hung up: ssh does not wait for it, but whatever reads the stderr it
// shares with ssh (a script, rsync, an IDE) does.
const proxyExitLimit = 500 * time.Millisecond

// TestProxyExitsWithSSH: once ssh closes the proxy's standard input and
// output, the proxy exits at once, and the session is still closed on the
// server, by the engineer.
func TestProxyExitsWithSSH(t *testing.T) {
	t.Parallel()
	p := startDataPath(t, pathOpts{})
	keys, err := p.admin.CAKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(t.TempDir(), "dev1.porthole.sock")
	x := startProxy(t, p, socket)
	out, err := x.dialProxy(parseKey(t, keys.HostCA), socket, "echo through the proxy")
	if err != nil || out != "through the proxy\n" {
		t.Fatalf("a command through porthole proxy: %q, %v\nstderr: %s", out, err, x.r.stderr)
	}
	// dialProxy's client has closed the pipes, as ssh does when it exits.
	hungUp := time.Now()
	select {
	case err := <-x.r.done:
		x.r.done <- err
		took := time.Since(hungUp)
		t.Logf("porthole proxy exited %v after ssh hung up", took.Round(time.Millisecond))
		if took > proxyExitLimit {
			t.Errorf("porthole proxy exited %v after ssh hung up; want within %v", took, proxyExitLimit)
		}
		if err != nil {
			t.Errorf("porthole proxy: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("porthole proxy did not exit after ssh hung up")
	}
	if s := x.r.stderr.String(); strings.Contains(s, "porthole:") {
		t.Errorf("porthole proxy said %q; want no complaint", s)
	}
	testwait.For(t, 10*time.Second, "the session to close", func() bool {
		ss := p.sessions(t)
		return len(ss) == 1 && ss[0].State == apitype.SessionClosed
	})
	p.allClosedBy(t, "engineer_closed")
}

// TestProxyTellsWhy: when the session ends under a client that is still
// connected (here closed through the API), the proxy says why before it
// exits.
func TestProxyTellsWhy(t *testing.T) {
	t.Parallel()
	p := startDataPath(t, pathOpts{})
	keys, err := p.admin.CAKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(t.TempDir(), "dev1.porthole.sock")
	x := startProxy(t, p, socket)
	cfg := &ssh.ClientConfig{
		User: "engineer",
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			c, err := net.Dial("unix", socket)
			if err != nil {
				return nil, err
			}
			t.Cleanup(func() { c.Close() })
			return agent.NewClient(c).Signers()
		})},
		HostKeyCallback: engineerssh.HostCertCallback(parseKey(t, keys.HostCA), []string{"dev1.porthole"}, "dev1"),
	}
	conn, chans, reqs, err := ssh.NewClientConn(pipeConn{x}, "dev1.porthole:22", cfg)
	if err != nil {
		t.Fatalf("SSH through porthole proxy: %v\nstderr: %s", err, x.r.stderr)
	}
	c := ssh.NewClient(conn, chans, reqs)
	defer c.Close() // only at the end: this client does not hang up by itself
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("sleep 30"); err != nil {
		t.Fatal(err)
	}
	ss := p.sessions(t)
	if len(ss) != 1 {
		t.Fatalf("sessions: %+v; want one", ss)
	}
	if _, err := p.admin.CloseSession(context.Background(), ss[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := x.r.wait(t); err != nil {
		t.Errorf("porthole proxy: %v", err)
	}
	if got, want := x.r.stderr.String(), "porthole: the session on dev1 was closed"; !strings.Contains(got, want) {
		t.Errorf("porthole proxy said %q; want %q", got, want)
	}
}

// TestOpenSSHProxyExits: with stock ssh, the ProxyCommand (this test binary
// as porthole) exits with ssh: the standard error it shares with ssh
// closes within proxyExitLimit of ssh's exit, so that whoever reads it is
// not kept waiting, and the session is closed.
func TestOpenSSHProxyExits(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh here")
	}
	p := startDataPath(t, pathOpts{})
	r := mustRun(t, p.env, "", "ssh-config")
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	writeFile(t, cfg, []byte(r.stdout), 0o600)
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), envTestMain + "=1",
		envServer + "=" + p.url, envToken + "=" + p.env[envToken], envFingerprint + "=" + p.fingerprint,
		"XDG_CONFIG_HOME=" + p.env["XDG_CONFIG_HOME"],
		"GORACE=atexit_sleep_ms=0"} // a -race build otherwise sleeps 1 s before it exits
	for i := range 3 {
		// stderr is a pipe of our own, which ssh and the proxy share: it
		// reaches EOF when the last of them has exited.
		errR, errW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, "ssh", "-F", cfg, "-o", "BatchMode=yes", "dev1.porthole", "echo via openssh")
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, errW
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		errW.Close()
		stderr := make(chan []byte, 1)
		closed := make(chan time.Time, 1)
		go func() {
			b, _ := io.ReadAll(errR)
			closed <- time.Now()
			stderr <- b
		}()
		err = cmd.Wait()
		exited := time.Now()
		var gone time.Time
		select {
		case gone = <-closed:
		case <-time.After(20 * time.Second):
			t.Fatal("the proxy did not exit within 20 s of ssh")
		}
		cancel()
		errR.Close()
		msgs := <-stderr
		if err != nil || out.String() != "via openssh\n" {
			t.Fatalf("ssh: %q, %v\nstderr: %s", out.String(), err, msgs)
		}
		took := gone.Sub(exited)
		t.Logf("run %d: porthole proxy exited %v after ssh", i, took.Round(time.Millisecond))
		if took > proxyExitLimit {
			t.Errorf("run %d: porthole proxy exited %v after ssh; want within %v\nstderr: %s", i, took.Round(time.Millisecond), proxyExitLimit, msgs)
		}
	}
	testwait.For(t, 10*time.Second, "the sessions to close", func() bool {
		ss := p.sessions(t)
		for _, s := range ss {
			if s.State != apitype.SessionClosed {
				return false
			}
		}
		return len(ss) == 3
	})
	for _, s := range p.sessions(t) {
		if s.CloseReason != "engineer_closed" {
			t.Errorf("session %s closed for %q; want engineer_closed", s.ID, s.CloseReason)
		}
	}
}
