package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// proc is a long-running child process (a server, an agent, sshd) whose
// output goes to a log file in the work directory.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // from Wait, once done is closed
}

// startProc starts bin with args and env, its output appended to logPath.
func startProc(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// pid is the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop interrupts the process and waits up to timeout for it to exit
// before killing it. It is safe to call twice.
func (p *proc) stop(timeout time.Duration) error {
	if p == nil || p.exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %v of SIGINT and was killed", p.name, timeout)
	}
}

// kill ends the process at once (SIGKILL) and waits for it. It is safe to
// call twice.
func (p *proc) kill() {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// failed describes a process that ended or misbehaved, with the end of its
// log, for an error message.
func (p *proc) failed(what string) error {
	return fmt.Errorf("%s %s; the end of its log (%s):\n%s", p.name, what, p.logPath, tailFile(p.logPath, 20))
}

// tailFile is the last n lines of a file, or a note that it cannot be read.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// runOutput runs a command to completion, with stdin as its input, and
// returns its standard output; the error carries its standard error.
func runOutput(ctx context.Context, env []string, stdin string, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// timing is one timed run of a client command.
type timing struct {
	wall     time.Duration // from start to exit
	firstOut time.Duration // from start to the first byte on stdout (if asked for)
	cpu      time.Duration // user + system of the command and its reaped children
}

// timeCommand runs cmd to completion and times it, until the command
// itself exits. With firstOutput, its standard output is read here (and
// discarded) so the first byte can be timed; otherwise cmd's own Stdout is
// kept.
//
// Standard error goes to a file, not a pipe: a child that outlives the
// command (ssh's ProxyCommand) keeps a pipe open, and Wait would wait for
// it too.
func timeCommand(cmd *exec.Cmd, firstOutput bool) (timing, error) {
	var t timing
	errf, err := os.CreateTemp("", "porthole-bench-stderr-")
	if err != nil {
		return t, err
	}
	defer func() {
		errf.Close()
		os.Remove(errf.Name())
	}()
	cmd.Stderr = errf
	var stdout io.ReadCloser
	if firstOutput {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return t, err
		}
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return t, err
	}
	if firstOutput {
		var b [1]byte
		if n, _ := stdout.Read(b[:]); n == 1 {
			t.firstOut = time.Since(start)
		}
		_, _ = io.Copy(io.Discard, stdout)
	}
	err = cmd.Wait()
	t.wall = time.Since(start)
	if cmd.ProcessState != nil {
		t.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		said, _ := os.ReadFile(errf.Name())
		return t, fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(string(said)))
	}
	if firstOutput && t.firstOut == 0 {
		return t, fmt.Errorf("%s printed nothing", strings.Join(cmd.Args, " "))
	}
	return t, nil
}

// freePort is a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// raiseFileLimit lifts this process's open file limit as far as it may go
// (as root, past the hard limit), since every simulated device holds a
// socket; children started afterwards inherit it. It returns the limit in
// force.
func raiseFileLimit(want uint64) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur >= want {
		return lim.Cur
	}
	try := syscall.Rlimit{Cur: want, Max: max(want, lim.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try); err == nil {
		return want
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return lim.Cur
}
