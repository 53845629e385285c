//go:build linux

package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/internal/testnet"
	"github.com/porthole/porthole/internal/testwait"
)

// TestOpenSSH runs stock ssh and scp through the block `porthole
// ssh-config` prints, with this test binary standing in for porthole as
// the ProxyCommand: the session's certificate reaches ssh through the
// proxy's agent socket, the device's host certificate is checked against
// the known_hosts line, and the session closes when ssh exits.
func TestOpenSSH(t *testing.T) {
	t.Parallel()
	for _, prog := range []string{"ssh", "scp"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Skipf("no %s here", prog)
		}
	}
	echo := testnet.Echo(t).Port
	p := startDataPath(t, pathOpts{allowPorts: []int{echo}})
	r := mustRun(t, p.env, "", "ssh-config")
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	writeFile(t, cfg, []byte(r.stdout), 0o600)
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), envTestMain + "=1",
		envServer + "=" + p.url, envToken + "=" + p.env[envToken], envFingerprint + "=" + p.fingerprint,
		"XDG_CONFIG_HOME=" + p.env["XDG_CONFIG_HOME"]}
	try := func(env []string, stdin, name string, args ...string) (stdout, stderr string, err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, append([]string{"-F", cfg, "-o", "BatchMode=yes"}, args...)...)
		cmd.Env = env
		var out, errb bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
		err = cmd.Run()
		return out.String(), errb.String(), err
	}
	run := func(name string, args ...string) string {
		t.Helper()
		out, errb, err := try(env, "", name, args...)
		if err != nil {
			t.Fatalf("%s %s: %v\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), err, out, errb)
		}
		return out
	}

	if out := run("ssh", "dev1.porthole", "echo via openssh"); out != "via openssh\n" {
		t.Errorf("ssh dev1.porthole printed %q", out)
	}
	local := filepath.Join(t.TempDir(), "f.txt")
	writeFile(t, local, []byte("copied by scp\n"), 0o644)
	remote := t.TempDir()
	run("scp", local, "dev1.acme.porthole:"+remote+"/")
	if got, err := os.ReadFile(filepath.Join(remote, "f.txt")); err != nil || string(got) != "copied by scp\n" {
		t.Errorf("after scp: %q, %v", got, err)
	}
	// Through the proxy, stock OpenSSH 9.2 and the device agree on X25519
	// (9.2 has no ML-KEM) and AES-GCM (not the ChaCha20 it prefers).
	logins := p.logins.all()
	if len(logins) != 2 {
		t.Errorf("the device logged %d logins; want 2 (ssh and scp): %v", len(logins), logins)
	}
	for _, l := range logins {
		if l["kex"] != ssh.KeyExchangeCurve25519 || l["cipher_in"] != wantCipher() || l["cipher_out"] != wantCipher() {
			t.Errorf("the device logged %v; want kex %s, ciphers %s", l, ssh.KeyExchangeCurve25519, wantCipher())
		}
	}
	// ssh ends its ProxyCommand with SIGHUP, which closes the session.
	testwait.For(t, 10*time.Second, "the sessions to close", func() bool {
		for _, s := range p.sessions(t) {
			if s.State != apitype.SessionClosed {
				return false
			}
		}
		return true
	})
	if ss := p.sessions(t); len(ss) != 2 || ss[0].CloseReason != "engineer_closed" {
		t.Errorf("sessions after ssh and scp: %+v; want two, closed by the engineer", ss)
	}
	if entries, _ := os.ReadDir(filepath.Join(p.env["XDG_CONFIG_HOME"], "porthole", agentSocketDir)); len(entries) != 0 {
		var names []string
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".lock") {
				names = append(names, e.Name())
			}
		}
		if len(names) != 0 {
			t.Errorf("agent sockets left behind: %v", names)
		}
	}

	// A forward (ssh -W, as -L) reaches a device port only if the session
	// was opened for it: PORTHOLE_PORTS tells the proxy, ssh's -W cannot.
	target := "127.0.0.1:" + strconv.Itoa(echo)
	_, errb, err := try(env, "ping\n", "ssh", "-W", target, "dev1.porthole")
	if err == nil || !strings.Contains(errb, "was not asked for when this session was opened") || !strings.Contains(errb, "PORTHOLE_PORTS") {
		t.Errorf("ssh -W without PORTHOLE_PORTS: %v\n%s", err, errb)
	}
	out, errb, err := try(append(env, envPorts+"="+strconv.Itoa(echo)), "ping\n", "ssh", "-W", target, "dev1.porthole")
	if err != nil || out != "ping\n" {
		t.Errorf("ssh -W with PORTHOLE_PORTS: %q, %v\n%s", out, err, errb)
	}
}
