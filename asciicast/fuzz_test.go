package asciicast

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzPlay plays arbitrary files, as `porthole replay` plays what a device
// uploaded. Play never panics and fails only for a file that is no
// asciicast, having written nothing then. What it writes is bounded by
// what it read (a byte of bad UTF-8 in a JSON string becomes the three of
// U+FFFD), and so is its waiting: never a wait shorter than minSleep, and
// with an idle limit, never longer than that limit for each line read,
// divided by the speed.
func FuzzPlay(f *testing.F) {
	f.Add([]byte(cast), uint16(0), byte(0))
	f.Add([]byte(cast), uint16(2000), byte(2))
	f.Add([]byte("{\"version\": 2}\n[1e300, \"o\", \"x\"]\n[-5, \"o\", \"y\"]\n[2, \"r\", \"80x24\"]\n"), uint16(1), byte(1))
	f.Add([]byte("{\"version\": 1}\n[0, \"o\", \"x\"]\n"), uint16(0), byte(0))
	f.Add([]byte("\n\n{\"version\":2}\r\n[0.5,\"o\",\"\\u001b[2J\\ud800\xff\"]"), uint16(10), byte(3))
	f.Add([]byte(""), uint16(0), byte(0))
	speeds := []float64{0, 1, 0.5, 2, 16, -1}
	f.Fuzz(func(t *testing.T, data []byte, idleMS uint16, speedIndex byte) {
		opts := PlayOptions{Speed: speeds[int(speedIndex)%len(speeds)], IdleLimit: time.Duration(idleMS) * time.Millisecond}
		var slept time.Duration
		opts.Sleep = func(_ context.Context, d time.Duration) error {
			if d < minSleep {
				t.Fatalf("a wait of %v", d)
			}
			slept += d
			return nil
		}
		var out bytes.Buffer
		skipped, err := Play(context.Background(), &out, bytes.NewReader(data), opts)
		lines := strings.Count(string(data), "\n") + 1
		switch {
		case errors.Is(err, ErrNotCast):
			if out.Len() != 0 || slept != 0 {
				t.Fatalf("not a cast, but %d bytes were played over %v", out.Len(), slept)
			}
		case err != nil:
			t.Fatalf("Play: %v", err)
		case skipped >= lines:
			t.Fatalf("%d lines skipped of %d", skipped, lines)
		}
		if out.Len() > 3*len(data) {
			t.Fatalf("%d bytes played from %d", out.Len(), len(data))
		}
		speed := opts.Speed
		if speed <= 0 {
			speed = 1
		}
		if limit := time.Duration(float64(lines) * float64(opts.IdleLimit) / speed); opts.IdleLimit > 0 && slept > limit {
			t.Fatalf("waited %v for %d lines with idle limit %v at speed %v", slept, lines, opts.IdleLimit, speed)
		}
	})
}
