package agentrecord

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/agentssh"
	"github.com/porthole/porthole/control"
)

// writeCast writes an asciicast with output events at the given seconds.
func writeCast(t *testing.T, dir, name string, events ...castEvent) {
	t.Helper()
	b := marshalHeader(CastHeader{Version: 2, Width: 80, Height: 24})
	for _, e := range events {
		b = appendCastEvent(b, time.Duration(e.T*float64(time.Second)), e.Kind, []byte(e.Data))
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// TestReplayTiming: pauses are kept, divided by the speed, and cut to the
// idle limit; tiny ones are gathered rather than slept one by one.
func TestReplayTiming(t *testing.T) {
	state := t.TempDir()
	dir := filepath.Join(state, SessionsDir, "ses_1")
	os.MkdirAll(dir, 0o750)
	agentstate.WriteFileShared(filepath.Join(dir, SessionMetaFile), []byte(`{"session":"ses_1","start":"2026-11-22T10:00:00Z"}`), -1)
	writeCast(t, dir, "0001-pty.cast",
		castEvent{0, "o", "a"}, castEvent{1, "o", "b"}, castEvent{1.001, "o", "c"}, castEvent{1.002, "i", "typed"},
		castEvent{1.003, "r", "100x30"}, castEvent{11, "o", "d"}, castEvent{11.5, "o", "e"})
	writeCast(t, dir, "0002-pty.cast", castEvent{3, "o", "f"})
	writeCast(t, dir, "0003-exec.cast", castEvent{0, "o", "never"})
	s, err := FindSession(state, "ses_1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		opts  ReplayOptions
		waits []time.Duration
	}{
		// The 1 ms steps of c, the input and the resize are gathered into
		// d's wait.
		{"as recorded", ReplayOptions{IdleLimit: -1}, []time.Duration{time.Second, 10 * time.Second, 500 * time.Millisecond, 3 * time.Second}},
		{"idle limit", ReplayOptions{}, []time.Duration{time.Second, 2003 * time.Millisecond, 500 * time.Millisecond, 2 * time.Second}},
		{"speed 2, limit 1s", ReplayOptions{Speed: 2, IdleLimit: time.Second}, []time.Duration{500 * time.Millisecond, 501500 * time.Microsecond, 250 * time.Millisecond, 500 * time.Millisecond}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var waits []time.Duration
			tt.opts.Sleep = func(_ context.Context, d time.Duration) error {
				waits = append(waits, d)
				return nil
			}
			var out, notes bytes.Buffer
			tt.opts.Notes = &notes
			if err := Replay(context.Background(), &out, s, tt.opts); err != nil {
				t.Fatal(err)
			}
			if out.String() != "abcdef" {
				t.Errorf("played %q; want abcdef (terminal output only, in order)", out.String())
			}
			near := func(a, b time.Duration) bool { return (a - b).Abs() < 100*time.Microsecond }
			if !slices.EqualFunc(waits, tt.waits, near) {
				t.Errorf("waits %v; want %v", waits, tt.waits)
			}
			if strings.Count(notes.String(), "porthole: [") != 2 {
				t.Errorf("notes %q; want one line per terminal", notes.String())
			}
		})
	}

	// Interrupted: the owner pressed ^C.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Replay(ctx, &bytes.Buffer{}, s, ReplayOptions{}); err != context.Canceled {
		t.Errorf("cancelled replay = %v", err)
	}
}

// TestReplayWhileRecording: a session still being recorded plays what is
// on disk so far, and a partial last line (a crash, a write under way) is
// skipped.
func TestReplayWhileRecording(t *testing.T) {
	r := openRecordings(t, Config{}, nil)
	r.Connected("ses_1", ann())
	p := r.Process("ses_1", agentssh.Process{Channel: 1, PTY: true, Cols: 80, Rows: 24, Start: time.Now()})
	p.Output([]byte("so far"))
	s := recorded(t, r, "ses_1")
	r.session("ses_1").flush()
	f, _ := os.OpenFile(filepath.Join(s.Dir, "0001-pty.cast"), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`[0.5, "o", "unfini`)
	f.Close()
	var out, notes bytes.Buffer
	if err := Replay(context.Background(), &out, recorded(t, r, "ses_1"), ReplayOptions{Notes: &notes, Speed: 1000}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "so far" || !strings.Contains(notes.String(), "skipped 1 unreadable lines") {
		t.Errorf("played %q, notes %q", out.String(), notes.String())
	}
}

// TestFormatSessionEventShown: what the engineer chose (file names, link
// targets, forward targets) is listed as it is when it shows as itself,
// and quoted with its escapes visible when it would drive the terminal.
func TestFormatSessionEventShown(t *testing.T) {
	for _, tt := range []struct {
		ev   SessionEvent
		want string
	}{
		{SessionEvent{Event: SessionEventSFTP, Op: "write", Path: "/tmp/ok file", Bytes: 5}, "write /tmp/ok file (5B)"},
		{SessionEvent{Event: SessionEventSFTP, Op: "remove", Path: "/etc/shadow\r\x1b[K/tmp/x"}, `remove "/etc/shadow\r\x1b[K/tmp/x"`},
		{SessionEvent{Event: SessionEventSFTP, Op: "symlink", Path: "/a", Target: "b\u2028c"}, `symlink /a -> "b\u2028c"`},
		{SessionEvent{Event: SessionEventForward, Target: "x\a:80", Refused: "not allowed"}, `"x\a:80": refused, not allowed`},
	} {
		got := FormatSessionEvent(tt.ev)
		if _, rest, _ := strings.Cut(got, tt.ev.Event); strings.TrimSpace(rest) != tt.want {
			t.Errorf("FormatSessionEvent(%+v) = %q; want it to end %q", tt.ev, got, tt.want)
		}
	}
}

// BenchmarkRecordOutput is the recorder's cost per byte of terminal
// output, which the engineer's session waits for.
func BenchmarkRecordOutput(b *testing.B) {
	dir := b.TempDir()
	r, err := Open(Options{StateDir: dir, Log: agenttest.OpenLog(b, dir), Config: Config{MaxSession: 1 << 40, MaxTotal: 2 << 40}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	r.Connected("ses_1", ann())
	p := r.Process("ses_1", agentssh.Process{Channel: 1, PTY: true, Cols: 80, Rows: 24, Start: time.Now()})
	chunk := bytes.Repeat([]byte("drwxr-xr-x  2 root root 4096 Nov 22 10:00 élan\r\n"), 32<<10/50)
	b.SetBytes(int64(len(chunk)))
	for b.Loop() {
		p.Output(chunk)
	}
}

func TestFindSession(t *testing.T) {
	r := openRecordings(t, Config{}, nil)
	for _, id := range []string{"ses_abc", "ses_abd", "other"} {
		r.Connected(id, ann())
		r.SessionEnded(id, control.CloseOnCommand)
	}
	for _, tt := range []struct{ id, want, err string }{
		{"ses_abc", "ses_abc", ""},
		{"oth", "other", ""},
		{"ses_ab", "", "could be any of ses_abc, ses_abd"},
		{"nope", "", `no session "nope" is recorded`},
		{"", "", "is recorded"},
		{"..", "", "is recorded"},
	} {
		s, err := FindSession(r.stateDir, tt.id)
		switch {
		case tt.err == "" && (err != nil || s.Session != tt.want):
			t.Errorf("FindSession(%q) = %v, %v; want %s", tt.id, s, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("FindSession(%q) = %v; want an error with %q", tt.id, err, tt.err)
		}
	}
	if _, err := FindSession(r.stateDir, "nope"); !errors.Is(err, ErrNoSession) {
		t.Errorf("FindSession(nope) = %v; want ErrNoSession", err)
	}
}
