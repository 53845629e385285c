// Package e2e runs Porthole's real binaries end to end: it builds them once
// per test process, starts servers and agents as child processes, and feeds
// the CLI on its standard input the way a person would.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/emptyhome"
	"github.com/porthole/porthole/internal/freeport"
)

// Binaries are the paths of the built programs.
type Binaries struct {
	Server, Agent, CLI string
}

// Build compiles portholed, porthole-agent and porthole into dir.
func Build(ctx context.Context, dir string) (Binaries, error) {
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(here))
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+"/", "./cmd/portholed", "./cmd/porthole-agent", "./cmd/porthole")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return Binaries{}, fmt.Errorf("go build: %w\n%s", err, out)
	}
	return Binaries{
		Server: filepath.Join(dir, "portholed"),
		Agent:  filepath.Join(dir, "porthole-agent"),
		CLI:    filepath.Join(dir, "porthole"),
	}, nil
}

// Env is a set of environment variables for child processes, on top of a
// minimal base (PATH, HOME in a temp dir) so the developer's own login and
// config never leak into a test.
type Env map[string]string

func (e Env) list() []string {
	out := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range e {
		out = append(out, k+"="+v)
	}
	return out
}

// With is a copy of e with the "NAME=value" pairs of kv added.
func (e Env) With(kv ...string) Env {
	out := Env{}
	maps.Copy(out, e)
	for _, pair := range kv {
		if k, v, ok := strings.Cut(pair, "="); ok {
			out[k] = v
		}
	}
	return out
}

// HideHome is argv (a device agent) run with the home directory hidden
// behind an empty one made in dir (package emptyhome: the device's shells
// must not wait on this machine's ~/.bashrc), with env and what that needs.
func HideHome(env Env, dir string, argv ...string) (Env, []string) {
	argv, extra := emptyhome.Wrap(dir, argv)
	return env.With(extra...), argv
}

// Result is what a finished command printed.
type Result struct {
	Stdout, Stderr string
	Err            error // nil or *exec.ExitError
}

// Run runs a command to completion with stdin as its input, within 60 s.
func Run(t testing.TB, env Env, stdin string, name string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env.list()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return Result{Stdout: out.String(), Stderr: errb.String(), Err: err}
}

// MustRun is Run that fails the test when the command fails.
func MustRun(t testing.TB, env Env, stdin string, name string, args ...string) Result {
	t.Helper()
	r := Run(t, env, stdin, name, args...)
	if r.Err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(args, " "), r.Err, r.Stdout, r.Stderr)
	}
	return r
}

// Proc is a long-running child process, stopped when the test ends.
type Proc struct {
	cmd  *exec.Cmd
	out  syncBuffer
	errb syncBuffer
	done chan struct{}
}

// Start starts a command in the background; the test's cleanup interrupts
// it and waits for it to exit.
func Start(t testing.TB, env Env, name string, args ...string) *Proc {
	t.Helper()
	p := &Proc{cmd: exec.Command(name, args...), done: make(chan struct{})}
	p.cmd.Env = env.list()
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errb
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.Stop(t) })
	return p
}

// Stop interrupts the process and waits up to 10 s for it to exit before
// killing it.
func (p *Proc) Stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s did not stop within 10 s of SIGINT; killing it", p.cmd.Path)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Stdout and Stderr return what the process printed so far.
func (p *Proc) Stdout() string { return p.out.String() }
func (p *Proc) Stderr() string { return p.errb.String() }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitFor polls cond every 20 ms until it holds or timeout passes, then
// fails the test with what.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FreePort returns a TCP port free on every address, for a server a test
// starts and must start again on the same port (package freeport).
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.Pick()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and readers.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

var _ io.Writer = (*syncBuffer)(nil)

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Main is a TestMain for packages that test the built programs: it builds
// them into a temporary directory, sets *bins (and *dir, if not nil), runs
// the tests and removes the directory. A failed build fails the package.
func Main(m *testing.M, prefix string, bins *Binaries, dir *string) {
	tmp, err := os.MkdirTemp("", prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	*bins, err = Build(ctx, tmp)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(tmp)
		os.Exit(1)
	}
	if dir != nil {
		*dir = tmp
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}
