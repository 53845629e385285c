// Package testwait lets a test wait, with a deadline, for what other
// goroutines and processes do: for a condition to hold, or for goroutines
// to end. A wait that times out fails the test saying what it waited for.
//
// Only tests may import it (a test in the module root checks).
package testwait

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// The pauses between two tests of a condition: short at first, when most
// conditions come true, then a little longer so that a long wait does not
// keep a core busy.
const (
	fastPoll  = 2 * time.Millisecond
	fastFor   = 50 * time.Millisecond
	slowPoll  = 5 * time.Millisecond
	stackSize = 1 << 20 // bytes of goroutine stacks a failure shows at most
)

// For tests cond until it holds, and fails t after timeout, naming what it
// waited for. It tests cond every 2 ms for the first 50 ms, then every
// 5 ms.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, 0, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// ForEvery is For testing cond only every interval, for a condition that
// is costly to test (one that starts a process, say).
func ForEvery(t testing.TB, timeout, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, interval, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// GoroutinesAtMost waits until the process runs at most n goroutines, and
// after timeout marks t failed (t.Errorf: the test goes on, to release what
// it holds) with the stack of every goroutine. A test counts its goroutines
// before it starts what it checks (n := runtime.NumGoroutine()), so it must
// not run in parallel with tests that start goroutines of their own.
func GoroutinesAtMost(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	if !poll(timeout, 0, func() bool { return runtime.NumGoroutine() <= n }) {
		t.Errorf("%d goroutines after %v; want at most %d:\n%s", runtime.NumGoroutine(), timeout, n, stacks())
	}
}

// Leftover waits up to timeout until no goroutine's stack mentions any of
// funcs (substrings such as "golang.org/x/crypto/ssh." or
// "porthole/relay.(*"), and returns the stacks of those that still do, or
// "" when none is left. It needs no testing.TB, for a TestMain that checks
// what the package's tests left running.
func Leftover(timeout time.Duration, funcs ...string) string {
	var left []string
	poll(timeout, 0, func() bool {
		left = left[:0]
		for g := range strings.SplitSeq(stacks(), "\n\n") {
			for _, f := range funcs {
				if strings.Contains(g, f) {
					left = append(left, g)
					break
				}
			}
		}
		return len(left) == 0
	})
	return strings.Join(left, "\n\n")
}

// poll tests cond until it holds or timeout passes, and reports whether it
// held. It pauses interval between tests, or, if interval is 0, fastPoll
// for the first fastFor and then slowPoll.
func poll(timeout, interval time.Duration, cond func() bool) bool {
	start := time.Now()
	for !cond() {
		waited := time.Since(start)
		if waited > timeout {
			return false
		}
		pause := interval
		if pause == 0 {
			pause = slowPoll
			if waited < fastFor {
				pause = fastPoll
			}
		}
		time.Sleep(pause)
	}
	return true
}

// stacks is the stack of every goroutine, separated by blank lines.
func stacks() string {
	buf := make([]byte, stackSize)
	return string(buf[:runtime.Stack(buf, true)])
}
