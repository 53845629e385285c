package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/porthole/porthole/internal/testnet"
)

// devServer is `portholed dev` on loopback, with the CLI pointed at it.
type devServer struct {
	proc        *Proc
	env         Env
	enrollToken string
	tmp         string
}

func startDev(t *testing.T) *devServer { return startDevOn(t, "127.0.0.1") }

// startDevOn is startDev listening on, and telling devices, the address
// host; extra are more flags for portholed dev.
func startDevOn(t *testing.T, host string, extra ...string) *devServer {
	t.Helper()
	tmp := t.TempDir()
	s := &devServer{tmp: tmp}
	s.proc = Start(t, Env{"HOME": tmp}, bins.Server, append([]string{"dev", "--host", host, "--listen", net.JoinHostPort(host, "0")}, extra...)...)
	var vars map[string]string
	WaitFor(t, 20*time.Second, "portholed dev to print its banner", func() bool {
		if s.proc.Exited() {
			t.Fatalf("portholed dev exited:\n%s", s.proc.Stderr())
		}
		vars = map[string]string{}
		for _, m := range regexp.MustCompile(`(?m)^(PORTHOLE_[A-Z_]+)=(\S+)$`).FindAllStringSubmatch(s.proc.Stdout(), -1) {
			vars[m[1]] = m[2]
		}
		return vars["PORTHOLE_ENROLL_TOKEN"] != ""
	})
	s.env = Env{"HOME": tmp, "XDG_CONFIG_HOME": filepath.Join(tmp, "config"),
		"PORTHOLE_SERVER": vars["PORTHOLE_SERVER"], "PORTHOLE_TOKEN": vars["PORTHOLE_TOKEN"],
		"PORTHOLE_FINGERPRINT": vars["PORTHOLE_FINGERPRINT"]}
	s.enrollToken = vars["PORTHOLE_ENROLL_TOKEN"]
	return s
}

// device enrolls name and runs its agent with the owner's config text.
func (s *devServer) device(t *testing.T, name, config string) *Proc {
	t.Helper()
	return s.deviceIn(t, "", name, config)
}

// deviceIn is device with the agent run in the network namespace ns (""
// for this one's).
func (s *devServer) deviceIn(t *testing.T, ns, name, config string) *Proc {
	t.Helper()
	state := filepath.Join(s.tmp, name)
	MustRun(t, s.env, "", bins.Agent, "enroll", "--server", s.env["PORTHOLE_SERVER"], "--token", s.enrollToken,
		"--fingerprint", s.env["PORTHOLE_FINGERPRINT"], "--name", name, "--state", state)
	cfg := filepath.Join(s.tmp, name+".yaml")
	// Each agent answers its owner on a socket of its own.
	config += "socket: " + filepath.Join(s.tmp, name+".sock") + "\n"
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	env, argv := HideHome(s.env, state+"-home", bins.Agent, "run", "--state", state, "--config", cfg)
	cmd, args := argv[0], argv[1:]
	if ns != "" {
		cmd, args = in(ns, cmd, args...)
	}
	p := Start(t, env, cmd, args...)
	WaitFor(t, 20*time.Second, name+" to be online", func() bool {
		if p.Exited() {
			t.Fatalf("the agent of %s exited:\n%s", name, p.Stderr())
		}
		r := Run(t, s.env, "", bins.CLI, "devices", "--json")
		return regexp.MustCompile(`"name":\s*"` + name + `"[^}]*"online":\s*true`).MatchString(r.Stdout)
	})
	return p
}

func randomFile(t *testing.T, path string, size int64) [32]byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestDataPath walks issue 4's list with the real binaries: exec with exit
// codes and stdin, a 64 MiB scp round trip, a forward, a resize on a real
// terminal.
func TestDataPath(t *testing.T) {
	t.Parallel()
	s := startDev(t)
	echoPort := testnet.Echo(t).Port
	agent := s.device(t, "dev1", fmt.Sprintf("consent: auto\nallow_ports: [%d]\n", echoPort))

	t.Run("exec", func(t *testing.T) {
		r := Run(t, s.env, "", bins.CLI, "ssh", "dev1", "--", "echo out; echo err >&2; exit 7")
		ee, ok := r.Err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 7 || r.Stdout != "out\n" || !strings.Contains(r.Stderr, "err\n") || strings.Contains(r.Stderr, "status 7") {
			t.Errorf("exit status %v, stdout %q, stderr %q; want 7, out, err\nagent:\n%s", r.Err, r.Stdout, r.Stderr, agent.Stderr())
		}
		r = MustRun(t, s.env, "line one\nline two\n", bins.CLI, "ssh", "dev1", "--", "wc", "-l")
		if strings.TrimSpace(r.Stdout) != "2" {
			t.Errorf("stdin piped through: wc -l said %q", r.Stdout)
		}
	})

	t.Run("scp 64 MiB round trip", func(t *testing.T) {
		dir := t.TempDir()
		src, back := filepath.Join(dir, "big.bin"), filepath.Join(dir, "back.bin")
		remote := filepath.Join(dir, "on-device.bin") // the device is this machine
		sum := randomFile(t, src, 64<<20)
		MustRun(t, s.env, "", bins.CLI, "scp", src, "dev1:"+remote)
		if fileSum(t, remote) != sum {
			t.Fatal("the file on the device differs from the one sent")
		}
		MustRun(t, s.env, "", bins.CLI, "scp", "dev1:"+remote, back)
		if fileSum(t, back) != sum {
			t.Fatal("the file copied back differs")
		}
	})

	t.Run("forward", func(t *testing.T) {
		local := FreePort(t)
		fwd := Start(t, s.env, bins.CLI, "forward", "dev1", fmt.Sprintf("%d:%d", local, echoPort))
		var c net.Conn
		WaitFor(t, 20*time.Second, "the forward to listen", func() bool {
			if fwd.Exited() {
				t.Fatalf("porthole forward exited:\n%s", fwd.Stderr())
			}
			var err error
			c, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", local))
			return err == nil
		})
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintln(c, "ping through the device")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || line != "ping through the device\n" {
			t.Errorf("echo through the forward: %q, %v\n%s", line, err, fwd.Stderr())
		}
		// A port outside the allow-list is refused by the device.
		refused := FreePort(t)
		fwd2 := Start(t, s.env, bins.CLI, "forward", "dev1", fmt.Sprintf("%d:%d", refused, 1))
		WaitFor(t, 20*time.Second, "the second forward to listen", func() bool {
			c2, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", refused))
			if err != nil {
				return fwd2.Exited()
			}
			defer c2.Close()
			c2.SetDeadline(time.Now().Add(5 * time.Second))
			n, _ := c2.Read(make([]byte, 1))
			return n == 0 // closed: the device refused the port
		})
	})

	t.Run("terminal and resize", func(t *testing.T) {
		cmd, tty, out := cliInTerminal(t, s.env, "ssh", "dev1")
		expect := func(want string) {
			t.Helper()
			WaitFor(t, 20*time.Second, "the terminal to show "+want, func() bool { return strings.Contains(out.String(), want) })
		}
		fmt.Fprint(tty, "stty size; echo READY1\n")
		expect("24 80")
		expect("READY1")
		if err := pty.Setsize(tty, &pty.Winsize{Rows: 40, Cols: 132}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond) // SIGWINCH reaches the client, window-change the device
		fmt.Fprint(tty, "stty size; exit 4\n")
		expect("40 132")
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 4 {
				t.Errorf("porthole ssh exited %v; want 4", err)
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("the shell did not exit:\n%s", out.String())
		}
	})
}

// TestStockOpenSSH: with `porthole ssh-config`, stock ssh, scp, sftp and
// rsync reach the device by name, checking its host certificate.
func TestStockOpenSSH(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"ssh", "scp", "sftp", "rsync"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not installed", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	s := startDev(t)
	s.device(t, "dev1", "consent: auto\n")
	r := MustRun(t, s.env, "", bins.CLI, "ssh-config")
	config := filepath.Join(s.tmp, "ssh_config")
	if err := os.WriteFile(config, []byte(r.Stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Stdout, "Host *.porthole") {
		t.Fatalf("ssh-config printed no Host block:\n%s", r.Stdout)
	}
	// ssh runs the ProxyCommand with its own environment: ours.
	run := func(name string, args ...string) Result {
		t.Helper()
		r := Run(t, s.env, "", name, args...)
		if r.Err != nil {
			t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
		}
		return r
	}
	if r := run("ssh", "-F", config, "dev1.porthole", "echo", "hello from stock ssh"); r.Stdout != "hello from stock ssh\n" {
		t.Errorf("ssh said %q", r.Stdout)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "a.bin")
	sum := randomFile(t, src, 1<<20)
	run("scp", "-F", config, src, "dev1.porthole:"+filepath.Join(dir, "b.bin"))
	if fileSum(t, filepath.Join(dir, "b.bin")) != sum {
		t.Error("scp changed the file")
	}
	batch := filepath.Join(dir, "batch")
	os.WriteFile(batch, []byte("get "+filepath.Join(dir, "b.bin")+" "+filepath.Join(dir, "c.bin")+"\n"), 0o600)
	run("sftp", "-F", config, "-b", batch, "dev1.porthole")
	if fileSum(t, filepath.Join(dir, "c.bin")) != sum {
		t.Error("sftp changed the file")
	}
	os.MkdirAll(filepath.Join(dir, "tree", "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "tree", "sub", "x.txt"), []byte("rsync me\n"), 0o644)
	run("rsync", "-a", "-e", "ssh -F "+config, filepath.Join(dir, "tree")+"/", "dev1.porthole:"+filepath.Join(dir, "tree-copy")+"/")
	if b, err := os.ReadFile(filepath.Join(dir, "tree-copy", "sub", "x.txt")); err != nil || !bytes.Equal(b, []byte("rsync me\n")) {
		t.Errorf("rsync: %q %v", b, err)
	}
	// A host that is not a device is refused by the host CA check, not
	// trusted on first use.
	if r := Run(t, s.env, "", "ssh", "-F", config, "-o", "BatchMode=yes", "nosuch.porthole", "true"); r.Err == nil {
		t.Error("ssh reached a device that does not exist")
	}
}

// cliInTerminal starts the porthole CLI with args in a terminal of 24 rows
// and 80 columns (TERM=xterm); out gathers what it shows. The terminal is
// closed when t ends.
func cliInTerminal(t *testing.T, env Env, args ...string) (*exec.Cmd, *os.File, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(bins.CLI, args...)
	cmd.Env = append(env.list(), "TERM=xterm")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	out := &syncBuffer{}
	go io.Copy(out, tty)
	return cmd, tty, out
}
