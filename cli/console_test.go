package cli

import (
	"errors"
	"testing"
	"time"
)

type termSize struct{ w, h int }

// TestFollowSize drives the resize loop with a fake size source: the
// device hears of each new size once, and of nothing unreadable, zero or
// unchanged; the loop ends when stopped.
func TestFollowSize(t *testing.T) {
	sizes := []struct {
		s   termSize
		err error
	}{
		{termSize{80, 24}, nil},                    // what the device was told: nothing to send
		{termSize{120, 40}, nil},                   // grown
		{termSize{120, 40}, nil},                   // polled again, unchanged
		{termSize{0, 0}, errors.New("no console")}, // unreadable for a moment
		{termSize{0, 40}, nil},                     // a console that reports nothing
		{termSize{100, 30}, nil},                   // shrunk
		{termSize{80, 24}, nil},                    // back to the first size: that is a change too
	}
	i := 0
	size := func() (int, int, error) {
		s := sizes[i]
		i++
		return s.s.w, s.s.h, s.err
	}
	tick := make(chan time.Time)
	stop := make(chan struct{})
	sent := make(chan termSize, len(sizes))
	done := make(chan struct{})
	go func() {
		defer close(done)
		followSize(stop, tick, size, 80, 24, func(w, h int) { sent <- termSize{w, h} })
	}()
	for range sizes {
		tick <- time.Now()
	}
	close(stop)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("followSize did not return after stop")
	}
	close(sent)
	var got []termSize
	for s := range sent {
		got = append(got, s)
	}
	want := []termSize{{120, 40}, {100, 30}, {80, 24}}
	if len(got) != len(want) {
		t.Fatalf("sent %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("sent %v; want %v", got, want)
			break
		}
	}
}

// TestUTF16Decoder: a Windows console's UTF-16 becomes UTF-8 byte for
// byte as a terminal would send it, Ctrl-Z included, with surrogate pairs
// joined across reads.
func TestUTF16Decoder(t *testing.T) {
	for _, tt := range []struct {
		name  string
		reads [][]uint16
		want  string
	}{
		{"ascii and controls", [][]uint16{{'l', 's', '\r', 0x03, 0x1a, 0x1b, '[', 'A'}}, "ls\r\x03\x1a\x1b[A"},
		{"latin and cjk", [][]uint16{{0xe9, 0x6f22}}, "é漢"},
		{"a pair in one read", [][]uint16{{0xd83d, 0xde00}}, "😀"},
		{"a pair split between reads", [][]uint16{{'a', 0xd83d}, {0xde00, 'b'}}, "a😀b"},
		{"a lone high half", [][]uint16{{0xd83d, 'x'}}, "\uFFFDx"},
		{"a lone low half", [][]uint16{{0xde00, 'x'}}, "\uFFFDx"},
		{"two high halves", [][]uint16{{0xd83d}, {0xd83d, 0xde00}}, "\uFFFD😀"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var d utf16Decoder
			var got []byte
			for _, r := range tt.reads {
				got = d.decode(got, r)
			}
			if string(got) != tt.want {
				t.Errorf("decoded %q; want %q", got, tt.want)
			}
		})
	}
}
