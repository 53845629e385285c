package agentssh

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/internal/testwait"
	"github.com/porthole/porthole/sshalgo"
)

func TestExec(t *testing.T) {
	e := newEnv(t)
	c, _ := e.login(t, e.server(t, nil))
	for _, tt := range []struct {
		command        string
		stdout, stderr string
		status         int // -1: no ExitError
		signal         string
	}{
		{command: "exit 0", status: -1},
		{command: "exit 3", status: 3},
		{command: "echo out; echo err >&2", stdout: "out\n", stderr: "err\n", status: -1},
		{command: "kill -TERM $$", signal: "TERM"},
		{command: "echo $0 $PWD", stdout: "sh /root\n", status: -1},
	} {
		t.Run(tt.command, func(t *testing.T) {
			if strings.Contains(tt.command, "$0") {
				acct, err := lookupAccount("")
				if err != nil {
					t.Fatal(err)
				}
				tt.stdout = strings.TrimSuffix(acct.Shell[strings.LastIndex(acct.Shell, "/")+1:], "\n") + " " + acct.Dir + "\n"
			}
			out, errOut, err := run(t, c, tt.command, nil)
			if out != tt.stdout || errOut != tt.stderr {
				t.Errorf("stdout %q, stderr %q; want %q, %q", out, errOut, tt.stdout, tt.stderr)
			}
			var ee *ssh.ExitError
			switch {
			case tt.signal != "":
				if !errors.As(err, &ee) || ee.Signal() != tt.signal {
					t.Errorf("err = %v; want exit-signal %s", err, tt.signal)
				}
			case tt.status == -1:
				if err != nil {
					t.Errorf("err = %v; want success", err)
				}
			default:
				if !errors.As(err, &ee) || ee.ExitStatus() != tt.status {
					t.Errorf("err = %v; want exit status %d", err, tt.status)
				}
			}
		})
	}
	p := e.rec.proc("exit 3")
	if p == nil || p.exited() == nil || p.exited().Status != 3 || p.info.PTY || p.info.User == "" {
		t.Errorf("recorded %+v", p)
	}
}

// TestLoginSession: a client whose version line asks for a login session
// gets a session channel the device opens as the login ends, and runs its
// command on it; one that does not ask gets none.
func TestLoginSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := e.server(t, nil)
	for _, asks := range []bool{true, false} {
		cc := e.clientConfig(e.certAuth(t))
		if asks {
			cc.ClientVersion = "SSH-2.0-Porthole " + sshalgo.LoginSessionWord
		}
		c, chans, reqs, _, err := dialConn(t, srv, testSession, cc)
		if err != nil {
			t.Fatal(err)
		}
		go ssh.DiscardRequests(reqs)
		if !sshalgo.OffersLoginSession(c.ServerVersion()) {
			t.Errorf("the device's version line %q does not offer a login session", c.ServerVersion())
		}
		select {
		case newCh := <-chans:
			if !asks || newCh.ChannelType() != sshalgo.LoginSessionChannel {
				t.Fatalf("asked: %v; the device opened a %q channel", asks, newCh.ChannelType())
			}
			ch, creqs, err := newCh.Accept()
			if err != nil {
				t.Fatal(err)
			}
			go ssh.DiscardRequests(creqs)
			if ok, err := ch.SendRequest("exec", true, ssh.Marshal(struct{ Command string }{"echo at login"})); !ok || err != nil {
				t.Fatalf("exec on the login session: %v, %v", ok, err)
			}
			if out, err := io.ReadAll(ch); string(out) != "at login\n" {
				t.Errorf("the login session's command wrote %q, %v", out, err)
			}
		case <-time.After(time.Second):
			if asks {
				t.Fatal("no login session came")
			}
		}
	}
}

func TestSignalRequest(t *testing.T) {
	e := newEnv(t)
	c, _ := e.login(t, e.server(t, nil))
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start("sleep 100"); err != nil {
		t.Fatal(err)
	}
	if err := s.Signal(ssh.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var ee *ssh.ExitError
	if err := s.Wait(); !errors.As(err, &ee) || ee.Signal() != "TERM" {
		t.Errorf("Wait = %v; want exit-signal TERM", err)
	}
}

func TestStdin(t *testing.T) {
	e := newEnv(t)
	c, _ := e.login(t, e.server(t, nil))
	before := e.activity.Load()
	in := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	out, _, err := run(t, c, "wc -c", bytes.NewReader(in))
	if err != nil || strings.TrimSpace(out) != strconv.Itoa(len(in)) {
		t.Errorf("wc -c of 1 MiB: %q, %v", out, err)
	}
	if e.activity.Load() <= before {
		t.Error("engineer input was not reported as activity")
	}
	// EOF on stdin reaches the process: cat ends.
	out, _, err = run(t, c, "cat", strings.NewReader("hello\n"))
	if err != nil || out != "hello\n" {
		t.Errorf("cat: %q, %v", out, err)
	}
}

func TestEnv(t *testing.T) {
	e := newEnv(t)
	c, _ := e.login(t, e.server(t, nil))
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, kv := range [][2]string{{"LANG", "C.UTF-8"}, {"LC_TIME", "C"}} {
		if err := s.Setenv(kv[0], kv[1]); err != nil {
			t.Errorf("Setenv %s: %v", kv[0], err)
		}
	}
	for _, kv := range [][2]string{{"FOO", "bar"}, {"LD_PRELOAD", "/tmp/evil.so"}, {"PATH", "/tmp"}, {"LC_", "x"}, {"BASH_ENV", "/tmp/x"}} {
		if err := s.Setenv(kv[0], kv[1]); err == nil {
			t.Errorf("Setenv %s accepted", kv[0])
		}
	}
	out, err := s.Output(`env`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	acct, err := lookupAccount("")
	if err != nil {
		t.Fatal(err)
	}
	// Over loopback TCP, as sshd would say it.
	client, server := c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr)
	want := map[string]string{"LANG": "C.UTF-8", "LC_TIME": "C", "HOME": acct.Home, "USER": acct.Name,
		"LOGNAME": acct.Name, "SHELL": acct.Shell, "PATH": defaultPath, "TERM": "dumb",
		"SSH_CLIENT":     fmt.Sprintf("127.0.0.1 %d %d", client.Port, server.Port),
		"SSH_CONNECTION": fmt.Sprintf("127.0.0.1 %d 127.0.0.1 %d", client.Port, server.Port)}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q; want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && !slices.Contains([]string{"PWD", "SHLVL", "_", "OLDPWD"}, k) {
			t.Errorf("unexpected variable %s=%q (the agent's own environment leaked?)", k, got[k])
		}
	}
}

// screen collects a terminal's output.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// shell starts a login shell with a 100x40 terminal.
func shell(t *testing.T, c *ssh.Client) (*ssh.Session, io.Writer, *screen) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.RequestPty("xterm-256color", 40, 100, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		t.Fatal(err)
	}
	in, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	scr := &screen{}
	s.Stdout = scr
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	return s, in, scr
}

func TestPTY(t *testing.T) {
	e := newEnv(t)
	c, _ := e.login(t, e.server(t, nil))
	s, in, scr := shell(t, c)
	io.WriteString(in, "stty size; echo TERM=$TERM; tty; [ \"$SSH_TTY\" = \"$(tty)\" ] && echo SSH_TTY\" \"matches\n")
	testwait.For(t, 10*time.Second, "stty size 40 100", func() bool {
		return strings.Contains(scr.String(), "40 100") && strings.Contains(scr.String(), "TERM=xterm-256color") &&
			strings.Contains(scr.String(), "/dev/pts/") && strings.Contains(scr.String(), "SSH_TTY matches")
	})
	if err := s.WindowChange(50, 132); err != nil {
		t.Fatal(err)
	}
	// The window change and the data after it travel apart (a request
	// and the channel's data): ask for the size once the terminal has it.
	testwait.For(t, 10*time.Second, "the resize to reach the terminal", func() bool {
		e.rec.mu.Lock()
		p := e.rec.procs[len(e.rec.procs)-1]
		e.rec.mu.Unlock()
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.resizes) > 0
	})
	io.WriteString(in, "stty size\n")
	testwait.For(t, 10*time.Second, "stty size 50 132", func() bool { return strings.Contains(scr.String(), "50 132") })
	io.WriteString(in, "exit 7\n")
	var ee *ssh.ExitError
	if err := s.Wait(); !errors.As(err, &ee) || ee.ExitStatus() != 7 {
		t.Errorf("Wait = %v; want exit status 7", err)
	}

	e.rec.mu.Lock()
	p := e.rec.procs[len(e.rec.procs)-1]
	e.rec.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.info.PTY || p.info.Command != "" || p.info.Term != "xterm-256color" || p.info.Cols != 100 || p.info.Rows != 40 {
		t.Errorf("recorded process %+v", p.info)
	}
	if !slices.Equal(p.resizes, [][2]int{{132, 50}}) {
		t.Errorf("recorded resizes %v", p.resizes)
	}
	if !strings.Contains(p.out.String(), "50 132") || !strings.Contains(p.in.String(), "stty size") {
		t.Errorf("recorded output %q, input %q", p.out.String(), p.in.String())
	}
	if p.exit == nil || p.exit.Status != 7 {
		t.Errorf("recorded exit %+v", p.exit)
	}
}

// alive says whether pid runs (a zombie does not: nothing reaps orphans in
// some containers).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] != 'Z'
}

// TestChannelCloseKillsJobs: a job-control shell puts a background job in
// a process group of its own; closing the channel kills it all the same.
func TestChannelCloseKillsJobs(t *testing.T) {
	needRoot(t)
	e := newEnv(t)
	// As nobody, whose plain /bin/sh starts faster than root's login
	// shell with its profile.
	c, _ := e.login(t, e.server(t, func(c *Config) {
		c.RunAs = "nobody"
		c.SFTPCommand = []string{"/bin/false"}
	}))
	s, in, scr := shell(t, c)
	io.WriteString(in, "sleep 1000 & echo BG=$!\n")
	re := regexp.MustCompile(`BG=(\d+)`)
	testwait.For(t, 10*time.Second, "the job's pid", func() bool { return re.MatchString(scr.String()) })
	pid, _ := strconv.Atoi(re.FindStringSubmatch(scr.String())[1])
	if !alive(pid) {
		t.Fatalf("job %d is not running", pid)
	}
	stat, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if f[2] == f[3] {
		t.Fatalf("the job's process group is its session's (%s): the shell did no job control", f[2])
	}
	s.Close()
	testwait.For(t, 10*time.Second, "the job to die", func() bool { return !alive(pid) })
}

// TestCancelKills: closing the session (ctx) kills a running command at
// once and tells the engineer why.
func TestCancelKills(t *testing.T) {
	e := newEnv(t)
	c, served := e.login(t, e.server(t, nil))
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, errOut := &screen{}, &screen{}
	s.Stdout, s.Stderr = out, errOut
	if err := s.Start("echo $$; sleep 100; echo survived"); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "the pid", func() bool { return strings.HasSuffix(out.String(), "\n") })
	pid, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	served.cancel(errors.New("the owner revoked the session"))
	if err := served.wait(t); err != nil {
		t.Errorf("ServeConn = %v; want nil", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("ServeConn took %v to return", d)
	}
	if alive(pid) || len(sessionMembers(pid)) > 0 && alive(sessionMembers(pid)[0]) {
		t.Errorf("process %d or its children still run", pid)
	}
	s.Wait()
	if !strings.Contains(errOut.String(), "the owner revoked the session") {
		t.Errorf("engineer's stderr %q; want the reason", errOut.String())
	}
	if strings.Contains(out.String(), "survived") {
		t.Error("the command went on")
	}
	e.rec.mu.Lock()
	defer e.rec.mu.Unlock()
	if !slices.Equal(e.rec.reasons, []string{"the owner revoked the session"}) {
		t.Errorf("recorded disconnect reasons %q", e.rec.reasons)
	}
}

func TestOtherRequestsRefused(t *testing.T) {
	e := newEnv(t)
	c, _ := e.login(t, e.server(t, nil))
	if _, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error("a remote forward (tcpip-forward) was accepted")
	}
	if _, _, err := c.OpenChannel("x11", nil); err == nil {
		t.Error("an x11 channel was accepted")
	}
	ok, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
	if err != nil || !ok {
		t.Errorf("keepalive: %v, %v", ok, err)
	}
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestSubsystem("netconf"); err == nil {
		t.Error("an unknown subsystem was accepted")
	}
	ok, err = s.SendRequest("auth-agent-req@openssh.com", true, nil)
	if err != nil || ok {
		t.Errorf("agent forwarding: %v, %v; want refused", ok, err)
	}
}
