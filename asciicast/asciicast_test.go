package asciicast

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

const cast = `{"version": 2, "width": 80, "height": 24}
[0.5, "o", "$ "]
[1.0, "i", "ls\r"]
[1.5, "o", "ls\r\n"]
[1.501, "o", "a b\r\n"]
[10.0, "o", "late"]
[10.2, "o", "r`

func TestPlay(t *testing.T) {
	for _, tt := range []struct {
		name   string
		opts   PlayOptions
		sleeps []time.Duration
	}{
		{"as recorded", PlayOptions{}, []time.Duration{500 * time.Millisecond, time.Second, 8499 * time.Millisecond}},
		{"twice as fast", PlayOptions{Speed: 2}, []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, 4249500 * time.Microsecond}},
		{"idle limit", PlayOptions{IdleLimit: 2 * time.Second}, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var slept []time.Duration
			tt.opts.Sleep = func(_ context.Context, d time.Duration) error {
				slept = append(slept, d.Round(time.Microsecond))
				return nil
			}
			var out strings.Builder
			skipped, err := Play(t.Context(), &out, strings.NewReader(cast), tt.opts)
			if err != nil || skipped != 1 {
				t.Fatalf("Play: skipped %d, %v; want the partial last line skipped", skipped, err)
			}
			if got, want := out.String(), "$ ls\r\na b\r\nlate"; got != want {
				t.Errorf("output = %q; want %q (input is not played)", got, want)
			}
			// The 1 ms pause before "a b" is gathered into the next wait.
			if len(slept) != len(tt.sleeps) {
				t.Fatalf("slept %v; want %v", slept, tt.sleeps)
			}
			for i := range slept {
				if d := slept[i] - tt.sleeps[i]; d < -time.Millisecond || d > time.Millisecond {
					t.Errorf("sleep %d = %v; want %v", i, slept[i], tt.sleeps[i])
				}
			}
		})
	}
}

func TestPlayRefuses(t *testing.T) {
	if _, err := Play(t.Context(), &strings.Builder{}, strings.NewReader("{\"version\": 1}\n[0, \"o\", \"x\"]\n"), PlayOptions{}); !errors.Is(err, ErrNotCast) {
		t.Errorf("a version 1 file: %v; want ErrNotCast", err)
	}
	if _, err := Play(t.Context(), &strings.Builder{}, strings.NewReader("hello\n"), PlayOptions{}); !errors.Is(err, ErrNotCast) {
		t.Errorf("text: %v; want ErrNotCast", err)
	}
	if n, err := Play(t.Context(), &strings.Builder{}, strings.NewReader(""), PlayOptions{}); err != nil || n != 0 {
		t.Errorf("an empty file: %d, %v; want nothing played, no error", n, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out strings.Builder
	if _, err := Play(ctx, &out, strings.NewReader(cast), PlayOptions{}); !errors.Is(err, context.Canceled) || out.Len() != 0 {
		t.Errorf("cancelled: %q, %v; want nothing and context.Canceled", out.String(), err)
	}
}
