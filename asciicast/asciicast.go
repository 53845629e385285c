// Package asciicast plays asciicast v2 recordings
// (https://docs.asciinema.org/manual/asciicast/v2/) in a terminal, with
// their timing: the owner's `porthole-agent replay` plays them from the
// device's disk and the engineer's `porthole replay` from the server.
//
// A recording is a header line (a JSON object with "version": 2), then
// one event a line: [seconds since the start, "o" (output) or "i" (input)
// or "r" (resize), data]. Only output is played.
package asciicast

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"time"
)

// ErrNotCast is a recording whose first line is not an asciicast v2
// header.
var ErrNotCast = errors.New("asciicast: not an asciicast v2 recording")

// PlayOptions shape a playback.
type PlayOptions struct {
	// Speed multiplies the pace. Zero: 1, as it happened.
	Speed float64
	// IdleLimit shortens longer pauses to itself, as asciinema's idle
	// time limit does. Zero or negative: pauses as recorded.
	IdleLimit time.Duration
	// Sleep waits d, or returns ctx's error. Nil: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// minSleep gathers shorter delays into one wait: a timer per event would
// be slower than the recording.
const minSleep = 10 * time.Millisecond

// Play writes the output events of the recording r holds to w with their
// timing. Lines it cannot read (a partial last line after a crash, say)
// are skipped and counted. It stops at ctx's end with ctx's error.
func Play(ctx context.Context, w io.Writer, r io.Reader, opts PlayOptions) (skipped int, err error) {
	if opts.Speed <= 0 {
		opts.Speed = 1
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	br := bufio.NewReaderSize(r, 64<<10)
	first := true
	var prev, pending float64
	for {
		line, rerr := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if first {
				var h struct {
					Version int `json:"version"`
				}
				if json.Unmarshal(line, &h) != nil || h.Version != 2 {
					return 0, ErrNotCast
				}
				first = false
			} else if t, kind, data, ok := parseEvent(line); !ok {
				skipped++
			} else {
				d := max(t-prev, 0)
				prev = t
				if opts.IdleLimit > 0 {
					d = min(d, opts.IdleLimit.Seconds())
				}
				pending += d / opts.Speed
				if kind == "o" {
					if wait := time.Duration(pending * float64(time.Second)); wait >= minSleep {
						pending = 0
						if err := opts.Sleep(ctx, wait); err != nil {
							return skipped, err
						}
					}
					if _, err := io.WriteString(w, data); err != nil {
						return skipped, err
					}
				}
			}
		}
		if errors.Is(rerr, io.EOF) {
			return skipped, nil // an empty file is a recording cut before its header was written
		}
		if rerr != nil {
			return skipped, rerr
		}
	}
}

// parseEvent reads one event line.
func parseEvent(line []byte) (t float64, kind, data string, ok bool) {
	var ev []json.RawMessage
	if json.Unmarshal(line, &ev) != nil || len(ev) != 3 ||
		json.Unmarshal(ev[0], &t) != nil || json.Unmarshal(ev[1], &kind) != nil || json.Unmarshal(ev[2], &data) != nil {
		return 0, "", "", false
	}
	return t, kind, data, true
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
