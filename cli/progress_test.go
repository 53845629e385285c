package cli

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/porthole/porthole/internal/testnet"
)

func TestProgressLine(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "asking dev1 to connect… 0.0 s"},
		{300 * time.Millisecond, "asking dev1 to connect… 0.3 s"},
		{9949 * time.Millisecond, "asking dev1 to connect… 9.9 s"},
		{12*time.Second + 700*time.Millisecond, "asking dev1 to connect… 12 s"},
		{65 * time.Second, "asking dev1 to connect… 1 min 05 s"},
		{-time.Second, "asking dev1 to connect… 0.0 s"},
	}
	for _, tt := range tests {
		if got := progressLine("asking dev1 to connect…", tt.d); got != tt.want {
			t.Errorf("progressLine(%v) = %q; want %q", tt.d, got, tt.want)
		}
	}
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestProgressPlain(t *testing.T) {
	var out testnet.Buffer
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	p := newProgress(&out, false, clock.now)
	p.set("asking dev1 to connect…")
	clock.add(2 * time.Second)
	p.set("asking dev1 to connect…") // the same: not repeated
	p.set("waiting for the owner of dev1 to let you in…")
	p.clear()
	want := "asking dev1 to connect…\nwaiting for the owner of dev1 to let you in…\n"
	if got := out.String(); got != want {
		t.Errorf("without a terminal, progress wrote %q; want %q", got, want)
	}
}

func TestProgressTerminal(t *testing.T) {
	var out testnet.Buffer
	clock := &fakeClock{t: time.Unix(1e9, 0)}
	p := newProgress(&out, true, clock.now)
	p.set("asking dev1 to connect…")
	if got, want := out.String(), "\r\x1b[Kasking dev1 to connect… 0.0 s"; got != want {
		t.Fatalf("first draw %q; want %q", got, want)
	}
	clock.add(1500 * time.Millisecond)
	// The ticker redraws in place with the time gone by.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.HasSuffix(out.String(), "\r\x1b[Kasking dev1 to connect… 1.5 s") {
		if time.Now().After(deadline) {
			t.Fatalf("the line was not redrawn with 1.5 s: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.clear()
	if got := out.String(); !strings.HasSuffix(got, "1.5 s\r\x1b[K") {
		t.Errorf("clear did not erase the line: %q", got)
	}
	n := len(out.String())
	time.Sleep(3 * progressTick)
	if len(out.String()) != n {
		t.Errorf("the line was drawn again after clear: %q", out.String()[n:])
	}
	p.clear() // twice is fine
}

func TestTransferLine(t *testing.T) {
	tests := []struct {
		done, total int64
		took        time.Duration
		want        string
	}{
		{0, 0, 0, "f  100%  0 B / 0 B  -"},
		{512, 1024, time.Second, "f   50%  512 B / 1.0 KiB  512 B/s"},
		{3 << 20, 12 << 20, 2 * time.Second, "f   25%  3.0 MiB / 12.0 MiB  1.5 MiB/s"},
		{5 << 30, 5 << 30, 10 * time.Second, "f  100%  5.0 GiB / 5.0 GiB  512.0 MiB/s"},
	}
	for _, tt := range tests {
		if got := transferLine("f", tt.done, tt.total, tt.took); got != tt.want {
			t.Errorf("transferLine(%d, %d, %v) = %q; want %q", tt.done, tt.total, tt.took, got, tt.want)
		}
	}
}
