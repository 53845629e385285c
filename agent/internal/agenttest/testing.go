package agenttest

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/control"
)

// WaitTimeout bounds every wait in the agent's tests; they normally finish
// in milliseconds.
const WaitTimeout = 10 * time.Second

// WaitUntil polls cond until it holds, failing the test after WaitTimeout.
func WaitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// SyncWriter is an io.Writer safe for concurrent use whose content can be
// read while it is written, for status output.
type SyncWriter struct {
	mu  sync.Mutex
	buf strings.Builder // guarded by mu
}

func (w *SyncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// String is everything written so far.
func (w *SyncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// WaitFor waits until everything written contains want.
func (w *SyncWriter) WaitFor(t testing.TB, want string) {
	t.Helper()
	defer func() {
		if t.Failed() {
			t.Logf("the output was:\n%s", w.String())
		}
	}()
	WaitUntil(t, fmt.Sprintf("%q in the output", want), func() bool { return strings.Contains(w.String(), want) })
}

// Logger is a debug logger that writes to the test's log until the test
// ends, and drops what goroutines say after that.
func Logger(t testing.TB) *slog.Logger {
	w := &testLogWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testLogWriter struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool // guarded by mu
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
}

// Clock is a settable clock, safe for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time // guarded by mu
}

// NewClock is a clock set to the real time.
func NewClock() *Clock { return &Clock{now: time.Now()} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// OpenLog opens the event log in state directory dir, as the running agent
// does once for all its parts, closing it when the test ends (after what
// was opened later, which its cleanups close first).
func OpenLog(t testing.TB, dir string) *agentlog.Log {
	t.Helper()
	l, err := agentlog.Open(filepath.Join(dir, agentlog.File))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// States collects the states a session reports (its Report is the
// session's reporter), for tests to look at (List) while it runs.
type States struct {
	mu  sync.Mutex
	got []control.State // guarded by mu
}

// Report records st; it is a session's reporter.
func (s *States) Report(st control.State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, st)
}

// List is what was reported so far, in order.
func (s *States) List() []control.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]control.State(nil), s.got...)
}

// OpenCmd is an open command for session on device lab/dev1, as the
// control channel hands it on once verified.
func OpenCmd(session string) *control.Command {
	return &control.Command{Type: control.TypeOpen, Session: session, Fleet: "lab", Device: "dev1", Relay: "relay:22"}
}

// ShortDir is a temporary directory with a path short enough for a unix
// socket (108 bytes at most), removed when the test ends.
func ShortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ph")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
