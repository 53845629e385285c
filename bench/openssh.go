package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// sshdPath is where Debian's openssh-server puts sshd; run.sh installs it
// when it is missing.
const sshdPath = "/usr/sbin/sshd"

// openSSH is the baseline: an sshd of the benchmark's own on a loopback
// port, and ssh/scp set up to reach it with a throw-away key.
type openSSH struct {
	log        *slog.Logger
	dir        string
	port       int
	sshd       *proc
	proxy      *delayProxy // between the clients and sshd, if any
	key        string      // the client's private key
	knownHosts string
	env        []string
}

// startOpenSSH writes a host key, a client key, authorized_keys and an
// sshd_config under dir and starts `sshd -D -e -f` on a free loopback port.
//
// The config is plain and fast: no PAM (no session modules to wait for),
// no DNS lookups, key authentication only. sftp-server serves SFTP, as on
// a stock Debian host, so OpenSSH's scp (SFTP by default since 9.0) does
// what `porthole scp` does.
func startOpenSSH(ctx context.Context, log *slog.Logger, dir string) (_ *openSSH, err error) {
	if _, err := os.Stat(sshdPath); err != nil {
		return nil, fmt.Errorf("%s is missing: install openssh-server (bench/run.sh does, as root)", sshdPath)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	o := &openSSH{log: log, dir: dir, key: filepath.Join(dir, "client_key"), knownHosts: filepath.Join(dir, "known_hosts")}
	o.env = baseEnv(dir)
	hostKey := filepath.Join(dir, "host_key")
	for _, k := range []string{hostKey, o.key} {
		if _, err := runOutput(ctx, o.env, "", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", k); err != nil {
			return nil, err
		}
	}
	clientPub, err := os.ReadFile(o.key + ".pub")
	if err != nil {
		return nil, err
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, clientPub, 0o600); err != nil {
		return nil, err
	}
	hostPub, err := os.ReadFile(hostKey + ".pub")
	if err != nil {
		return nil, err
	}
	if o.port, err = freePort(); err != nil {
		return nil, err
	}
	known := fmt.Sprintf("[127.0.0.1]:%d %s", o.port, hostPub)
	if err := os.WriteFile(o.knownHosts, []byte(known), 0o600); err != nil {
		return nil, err
	}
	sftpServer := "/usr/lib/openssh/sftp-server"
	if _, err := os.Stat(sftpServer); err != nil {
		sftpServer = "internal-sftp"
	}
	// HOME for sessions is an empty directory: bash reads ~/.bashrc when
	// sshd starts it (it sees SSH_CLIENT), and this machine's root
	// .bashrc alone (pyenv init) takes longer than an SSH login; with it
	// the comparison would measure a shell start-up file, not SSH. The
	// agent's shells get an empty home too (env.go, package emptyhome).
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	config := filepath.Join(dir, "sshd_config")
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile none
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
UseDNS no
StrictModes no
PermitRootLogin prohibit-password
PrintMotd no
AcceptEnv LANG LC_*
Subsystem sftp %s
SetEnv HOME=%s
LogLevel ERROR
# The load measurement logs in many at once; sshd's default (10:30:100)
# would drop some of them at random before they log in.
MaxStartups 1000
`, o.port, hostKey, authorized, sftpServer, home)
	if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	// sshd wants its privilege separation directory (made by the package's
	// init script, which a container never ran).
	if os.Geteuid() == 0 {
		_ = os.MkdirAll("/run/sshd", 0o755)
	}
	if o.sshd, err = startProc("sshd", filepath.Join(dir, "sshd.log"), o.env, sshdPath, "-D", "-e", "-f", config); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port)))
		if err == nil {
			c.Close()
			break
		}
		if o.sshd.exited() {
			return nil, o.sshd.failed("exited at start")
		}
		if time.Now().After(deadline) {
			o.close()
			return nil, o.sshd.failed("did not listen within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// One login proves the setup before anything is timed.
	if _, err := timeCommand(o.ssh(nil, "true"), false); err != nil {
		o.close()
		return nil, fmt.Errorf("logging in to the benchmark's own sshd: %w\n%s", err, tailFile(filepath.Join(dir, "sshd.log"), 10))
	}
	return o, nil
}

// delayed is the same sshd reached through a delayProxy: a link with a
// round trip of 2×oneWay. Closing it closes only the proxy.
func (o *openSSH) delayed(oneWay time.Duration) (*openSSH, error) {
	proxy, err := startDelayProxy(fmt.Sprintf("127.0.0.1:%d", o.port), oneWay)
	if err != nil {
		return nil, err
	}
	hostPub, err := os.ReadFile(filepath.Join(o.dir, "host_key.pub"))
	if err != nil {
		proxy.close()
		return nil, err
	}
	d := *o
	d.port, d.proxy = proxy.port(), proxy
	d.knownHosts = filepath.Join(o.dir, fmt.Sprintf("known_hosts_%d", d.port))
	if err := os.WriteFile(d.knownHosts, fmt.Appendf(nil, "[127.0.0.1]:%d %s", d.port, hostPub), 0o600); err != nil {
		proxy.close()
		return nil, err
	}
	return &d, nil
}

// clientOptions are what ssh and scp share: this run's key and known
// hosts, nothing from a user's config.
func (o *openSSH) clientOptions(extra []string) []string {
	opts := []string{"-F", "none", "-i", o.key, "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + o.knownHosts, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes"}
	return append(opts, extra...)
}

// ssh runs command on the sshd with ssh's extra options.
func (o *openSSH) ssh(extra []string, command ...string) *exec.Cmd {
	args := append(o.clientOptions(append([]string{"-o", "LogLevel=ERROR"}, extra...)), "-p", strconv.Itoa(o.port), "127.0.0.1", "--")
	c := exec.Command("ssh", append(args, command...)...)
	c.Env = o.env
	return c
}

// scp copies with OpenSSH's scp; a remote path is written "REMOTE:path".
func (o *openSSH) scp(extra []string, src, dst string) *exec.Cmd {
	remote := func(s string) string {
		if rest, ok := strings.CutPrefix(s, "REMOTE:"); ok {
			return "127.0.0.1:" + rest
		}
		return s
	}
	args := append(o.clientOptions(append([]string{"-o", "LogLevel=ERROR"}, extra...)), "-q", "-P", strconv.Itoa(o.port), remote(src), remote(dst))
	c := exec.Command("scp", args...)
	c.Env = o.env
	return c
}

// settle waits until sshd has reaped every connection's process, so that
// their CPU time is in sshd's count and the next command starts alone.
func (o *openSSH) settle() {
	if !waitNoChildren(o.sshd.pid(), 5*time.Second) {
		o.log.Warn("sshd still has a connection's process 5 s after its client exited")
	}
}

// cpu is the CPU time of sshd and the processes it has reaped.
func (o *openSSH) cpu() (time.Duration, error) { return cpuTime(o.sshd.pid()) }

// close stops sshd, or only the proxy of a delayed one.
func (o *openSSH) close() {
	if o == nil || o.sshd == nil {
		return
	}
	if o.proxy != nil {
		o.proxy.close()
		return
	}
	if err := o.sshd.stop(10 * time.Second); err != nil && !errors.Is(err, os.ErrProcessDone) {
		o.log.Warn("stopping sshd", "err", err)
	}
}
