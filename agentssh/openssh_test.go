package agentssh

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// serveTCP serves every connection to a loopback listener for session,
// as the agent serves relay channels, and returns the port.
func serveTCP(t *testing.T, srv *Server, session string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { srv.ServeConn(ctx, nc, session) })
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// openSSH writes what `porthole ssh-config` and `porthole ssh` give a
// laptop (a key, its session certificate, a known_hosts line trusting the
// host CA) and returns ssh's options for them.
func (e *env) openSSH(t *testing.T, port int) (dir string, opts []string) {
	t.Helper()
	dir = t.TempDir()
	block, err := ssh.MarshalPrivateKey(e.engineerPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "id_ed25519")
	write := func(name string, data []byte, mode os.FileMode) {
		if err := os.WriteFile(name, data, mode); err != nil {
			t.Fatal(err)
		}
	}
	write(key, pem.EncodeToMemory(block), 0o600)
	write(key+"-cert.pub", ssh.MarshalAuthorizedKey(e.cert(t, e.userCA, claims())), 0o644)
	kh := filepath.Join(dir, "known_hosts")
	write(kh, []byte("@cert-authority *.porthole "+string(ssh.MarshalAuthorizedKey(e.hostCA.PublicKey()))), 0o644)
	return dir, []string{
		"-F", "/dev/null",
		"-o", "IdentityFile=" + key, "-o", "CertificateFile=" + key + "-cert.pub", "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + kh, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "HostKeyAlias=dev1.porthole",
		"-o", "ConnectTimeout=10", "-o", "Port=" + strconv.Itoa(port),
	}
}

func runOpenSSH(t *testing.T, env []string, name string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func needOpenSSH(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/bin/ssh"); err != nil {
		t.Skip("no OpenSSH client at /usr/bin/ssh")
	}
}

// TestOpenSSH: stock ssh and scp, configured as porthole configures them,
// work with the device.
func TestOpenSSH(t *testing.T) {
	needOpenSSH(t)
	e := newEnv(t)
	port := serveTCP(t, e.server(t, nil), testSession)
	dir, opts := e.openSSH(t, port)
	batch := append([]string{"-o", "BatchMode=yes"}, opts...)

	out, errOut, err := runOpenSSH(t, nil, "/usr/bin/ssh", append(batch, "127.0.0.1", "echo ok")...)
	if err != nil || out != "ok\n" {
		t.Fatalf("ssh echo ok: %q, %v\n%s", out, err, errOut)
	}
	_, _, err = runOpenSSH(t, nil, "/usr/bin/ssh", append(batch, "127.0.0.1", "exit 5")...)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 {
		t.Errorf("ssh exit 5: %v", err)
	}

	if _, err := os.Stat("/usr/bin/scp"); err == nil {
		src := filepath.Join(dir, "src")
		data := bytes.Repeat([]byte("porthole "), 100000)
		os.WriteFile(src, data, 0o644)
		dst := filepath.Join(t.TempDir(), "dst")
		args := append([]string{"-q"}, batch...)
		if _, errOut, err := runOpenSSH(t, nil, "/usr/bin/scp", append(args, src, "127.0.0.1:"+dst)...); err != nil {
			t.Fatalf("scp: %v\n%s", err, errOut)
		}
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
			t.Errorf("scp copied %d bytes (%v); want %d", len(got), err, len(data))
		}
	}
}

// TestOpenSSHSupportCode: stock ssh asks for the support code (through
// SSH_ASKPASS here) after its certificate, and gets in only with the
// right one.
func TestOpenSSHSupportCode(t *testing.T) {
	needOpenSSH(t)
	const code = "K4M2-9QXD-TT7P"
	e := newEnv(t)
	srv := e.server(t, func(c *Config) {
		c.SecondFactor = func(string) (string, func(string) error) {
			return "", func(a string) error {
				if a != code {
					return errors.New("wrong support code")
				}
				return nil
			}
		}
	})
	port := serveTCP(t, srv, testSession)
	dir, opts := e.openSSH(t, port)
	opts = append(opts, "-o", "BatchMode=no", "-o", "KbdInteractiveAuthentication=yes",
		"-o", "PasswordAuthentication=no", "-o", "NumberOfPasswordPrompts=1",
		"-o", "PreferredAuthentications=publickey,keyboard-interactive")
	for _, tt := range []struct {
		name, answer string
		ok           bool
	}{
		{"wrong", "AAAA-BBBB-CCCC", false},
		{"right", code, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			askpass := filepath.Join(dir, "askpass-"+tt.name)
			if err := os.WriteFile(askpass, []byte("#!/bin/sh\necho '"+tt.answer+"'\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			env := []string{"SSH_ASKPASS=" + askpass, "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0"}
			out, errOut, err := runOpenSSH(t, env, "/usr/bin/ssh", append(opts, "127.0.0.1", "echo ok")...)
			if tt.ok {
				if err != nil || out != "ok\n" {
					t.Errorf("with the right code: %q, %v\n%s", out, err, errOut)
				}
				return
			}
			if err == nil {
				t.Fatal("ssh got in with a wrong code")
			}
			if !strings.Contains(errOut, "wrong support code") {
				t.Errorf("ssh said %q; want the reason", errOut)
			}
		})
	}
}
