package testwait

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTB records the failure instead of ending the test.
type fakeTB struct {
	testing.TB
	failure string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) { f.failure = fmt.Sprintf(format, args...) }

func (f *fakeTB) Errorf(format string, args ...any) { f.failure = fmt.Sprintf(format, args...) }

func TestFor(t *testing.T) {
	var calls atomic.Int32
	For(t, 5*time.Second, "the third call", func() bool { return calls.Add(1) == 3 })
	if n := calls.Load(); n != 3 {
		t.Errorf("cond called %d times; want 3", n)
	}
}

func TestForTimesOut(t *testing.T) {
	f := &fakeTB{}
	start := time.Now()
	For(f, 30*time.Millisecond, "a miracle", func() bool { return false })
	if took := time.Since(start); took < 30*time.Millisecond {
		t.Errorf("gave up after %v; want at least the timeout, 30ms", took)
	}
	if want := "timed out after 30ms waiting for a miracle"; f.failure != want {
		t.Errorf("failure %q; want %q", f.failure, want)
	}
}

func TestForEvery(t *testing.T) {
	f := &fakeTB{}
	var calls atomic.Int32
	ForEvery(f, 100*time.Millisecond, 40*time.Millisecond, "a miracle", func() bool { calls.Add(1); return false })
	if n := calls.Load(); n < 2 || n > 5 {
		t.Errorf("cond called %d times in 100ms, every 40ms; want 3 or 4", n)
	}
	if !strings.Contains(f.failure, "a miracle") {
		t.Errorf("failure %q; want it to name what it waited for", f.failure)
	}
}

// park starts a goroutine that runs parked until release is closed, and
// returns once it runs: before that, its stack may not show parked yet.
func park(release <-chan struct{}) (done <-chan struct{}) {
	started, ended := make(chan struct{}), make(chan struct{})
	go parked(started, release, ended)
	<-started
	return ended
}

// parked is a goroutine's function the tests find in the stacks.
//
//go:noinline
func parked(started chan<- struct{}, release <-chan struct{}, done chan<- struct{}) {
	close(started)
	<-release
	close(done)
}

func TestGoroutinesAtMost(t *testing.T) {
	before := runtime.NumGoroutine()
	release := make(chan struct{})
	done := park(release)

	f := &fakeTB{}
	GoroutinesAtMost(f, before, 20*time.Millisecond)
	if !strings.Contains(f.failure, "testwait.parked") {
		t.Errorf("failure %q; want the stack of the goroutine left", f.failure)
	}

	// One that ends while GoroutinesAtMost waits is fine.
	time.AfterFunc(20*time.Millisecond, func() { close(release) })
	GoroutinesAtMost(t, before, 5*time.Second)
	<-done
}

func TestLeftover(t *testing.T) {
	release := make(chan struct{})
	done := park(release)
	if left := Leftover(20*time.Millisecond, "testwait.parked"); !strings.Contains(left, "testwait.parked") {
		t.Errorf("Leftover = %q; want the parked goroutine's stack", left)
	}
	if left := Leftover(0, "no.such.func"); left != "" {
		t.Errorf("Leftover of a function nobody runs = %q; want none", left)
	}
	close(release)
	<-done
	if left := Leftover(5*time.Second, "testwait.parked"); left != "" {
		t.Errorf("Leftover after the goroutine ended = %q; want none", left)
	}
}
