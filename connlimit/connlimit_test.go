package connlimit

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func tcp(s string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		panic(err)
	}
	return a
}

func TestSource(t *testing.T) {
	tests := []struct {
		addr net.Addr
		want string
	}{
		{tcp("192.0.2.7:1234"), "192.0.2.7"},
		{tcp("[::ffff:192.0.2.7]:1234"), "192.0.2.7"},
		{tcp("[2001:db8:1:2:3:4:5:6]:22"), "2001:db8:1:2::/64"},
		{tcp("[2001:db8:1:2:ffff::1]:22"), "2001:db8:1:2::/64"},
		{tcp("[2001:db8:1:3::1]:22"), "2001:db8:1:3::/64"},
		{&net.UnixAddr{Name: "@x", Net: "unix"}, "@x"},
	}
	for _, tt := range tests {
		if got := Source(tt.addr); got != tt.want {
			t.Errorf("Source(%v) = %q; want %q", tt.addr, got, tt.want)
		}
	}
}

// TestPerSource: one source gets PerSource slots and Queue places to wait;
// past that it is refused, while another source is served at once; a
// waiting connection takes the first slot given back.
func TestPerSource(t *testing.T) {
	l := New(Config{Max: 100, PerSource: 2, Queue: 1})
	attacker := tcp("[2001:db8::1]:1")
	var held []*Ticket
	for i := range 2 {
		tk, err := l.Admit(tcp("[2001:db8::" + string(rune('2'+i)) + "]:1")) // the same /64
		if err != nil {
			t.Fatalf("Admit %d: %v", i, err)
		}
		if err := tk.Wait(t.Context()); err != nil {
			t.Fatalf("Wait %d: %v", i, err)
		}
		held = append(held, tk)
	}
	waiting, err := l.Admit(attacker)
	if err != nil {
		t.Fatalf("Admit into the queue: %v", err)
	}
	if _, err := l.Admit(attacker); !errors.Is(err, ErrSourceFull) {
		t.Fatalf("Admit past the queue = %v; want ErrSourceFull", err)
	}
	other, err := l.Admit(tcp("192.0.2.1:5"))
	if err != nil {
		t.Fatalf("another source: %v", err)
	}
	if err := other.Wait(t.Context()); err != nil {
		t.Fatalf("another source waited: %v", err)
	}
	other.Release()

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := waiting.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with every slot held = %v; want the deadline", err)
	}
	done := make(chan error, 1)
	go func() { done <- waiting.Wait(context.Background()) }()
	held[0].Release()
	held[0].Release() // a second Release gives nothing more back
	if err := <-done; err != nil {
		t.Fatalf("Wait after a Release: %v", err)
	}
	if n := l.InUse(); n != 2 {
		t.Errorf("InUse = %d; want 2", n)
	}
	held[1].Release()
	waiting.Release()
	if n := l.InUse(); n != 0 || len(l.sources) != 0 {
		t.Errorf("InUse = %d, %d sources after every Release; want none", n, len(l.sources))
	}
}

// TestMax: past Max nothing is admitted, from any source.
func TestMax(t *testing.T) {
	l := New(Config{Max: 2, PerSource: 5})
	a, _ := l.Admit(tcp("192.0.2.1:1"))
	if _, err := l.Admit(tcp("192.0.2.2:1")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Admit(tcp("192.0.2.3:1")); !errors.Is(err, ErrFull) {
		t.Fatalf("Admit past Max = %v; want ErrFull", err)
	}
	a.Release()
	if _, err := l.Admit(tcp("192.0.2.3:1")); err != nil {
		t.Fatalf("Admit after a Release: %v", err)
	}
}
