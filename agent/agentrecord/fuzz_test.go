package agentrecord

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/asciicast"
)

// FuzzParseSize: sizes and ages in agent.yaml. What ParseByteSize and
// ParseAge accept is never negative; an age reads back exactly from its
// String, and a size from its number of bytes (and to a twentieth from
// its String, which rounds to a tenth of its unit).
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"64MiB", "1.5GiB", "500kB", "0", "1048576", " 2 M ", "30d", "2w", "12h", "1e5w", "20000w", "99999.9d", "1.5", "NaN", "-0", "0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if b, err := ParseByteSize(s); err == nil {
			if b < 0 {
				t.Fatalf("ParseByteSize(%q) = %d", s, b)
			}
			if again, err := ParseByteSize(strings.TrimSuffix(ByteSize(b).String(), "B") + "B"); err != nil || again < b-b/20 || again > b+b/20 {
				t.Fatalf("ParseByteSize(%q) = %d, written %q, reads as %d, %v", s, b, b.String(), again, err)
			}
		}
		if a, err := ParseAge(s); err == nil {
			if a < 0 {
				t.Fatalf("ParseAge(%q) = %v", s, time.Duration(a))
			}
			if again, err := ParseAge(a.String()); err != nil || again != a {
				t.Fatalf("ParseAge(%q) = %v, written %q, reads as %v, %v", s, time.Duration(a), a.String(), time.Duration(again), err)
			}
		}
	})
}

// FuzzCastText: terminal output, in arbitrary chunks, through the
// recorder's asciicast writer (castText, appendCastEvent) and back through
// the player. Every line written is one JSON value, and what plays is what
// was output, with each byte that is not UTF-8 as U+FFFD (a character cut
// between chunks stays whole).
func FuzzCastText(f *testing.F) {
	f.Add([]byte("$ ls\r\na b\r\n"), []byte{2, 3})
	f.Add([]byte("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"), []byte{2, 1, 1, 5, 1})
	f.Add([]byte("\xe2\x82x\xff\x00\x1b[2J\u2028\"\\"), []byte{1, 1, 0, 3})
	f.Add([]byte("\xf0\x9f\x98"), []byte{})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		cast := marshalHeader(CastHeader{Version: 2, Width: 80, Height: 24})
		var ct castText
		emit := func(p []byte, at int) {
			if len(p) > 0 {
				cast = appendCastEvent(cast, time.Duration(at)*time.Millisecond, "o", p)
			}
		}
		rest := data
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if i < len(cuts) {
				n = min(int(cuts[i]), n)
			}
			emit(ct.next(rest[:n]), i)
			rest = rest[n:]
		}
		emit(ct.flush(), len(cuts))
		for line := range bytes.Lines(cast) {
			if !json.Valid(line) || bytes.IndexByte(line, '\n') != len(line)-1 {
				t.Fatalf("cast line %q is not one JSON value on one line", line)
			}
		}
		var out strings.Builder
		skipped, err := asciicast.Play(context.Background(), &out, bytes.NewReader(cast),
			asciicast.PlayOptions{Sleep: func(context.Context, time.Duration) error { return nil }})
		if want := string([]rune(string(data))); err != nil || skipped != 0 || out.String() != want {
			t.Fatalf("played %q (%d skipped, %v); want %q", out.String(), skipped, err, want)
		}
	})
}

// FuzzReadSessionLogs: the owner's readers of a session's events.jsonl
// and of agent.log, over any file (a crash may have cut the last line; a
// full disk, anything). They never panic, and account for every line that
// is not blank, as read or skipped (or, for agent.log, older than asked
// for). Every event shows as one line that cannot drive the owner's
// terminal: the engineer chose its file names, commands and targets.
func FuzzReadSessionLogs(f *testing.F) {
	f.Add([]byte(`{"time":"2026-11-22T10:00:00Z","event":"connected","user":"ann@example.com","valid_before":"2026-11-22T11:00:00Z"}
{"time":"2026-11-22T10:00:01Z","event":"exit","process":1,"status":-1,"signal":"KILL","duration_ms":9e15}
{"time":"2026-11-22T10:00:02Z","event":"sftp","op":"write","path":"/x\u001b[2J","bytes":5}
{"time":"2026-11-22T10:00:0`))
	f.Add([]byte("\n \n{}\n[]\nnull\n{\"time\":\"x\"}\n{\"event\":3}\n"))
	dir := f.TempDir()
	events, log := filepath.Join(dir, SessionEventsFile), filepath.Join(dir, agentlog.File)
	since := time.Date(2026, 11, 22, 10, 0, 1, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := 0
		for line := range bytes.Lines(data) {
			if len(bytes.TrimSpace(line)) > 0 {
				lines++
			}
		}
		for _, p := range []string{events, log} {
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		evs, skipped, err := ReadSessionEvents(&SessionInfo{Dir: dir})
		if err != nil || len(evs)+skipped != lines {
			t.Fatalf("ReadSessionEvents: %d events, %d skipped of %d lines, %v", len(evs), skipped, lines, err)
		}
		for _, ev := range evs {
			if line := FormatSessionEvent(ev); strings.ContainsFunc(line, func(r rune) bool { return !unicode.IsGraphic(r) }) {
				t.Fatalf("event %+v shows as %q", ev, line)
			}
		}
		all, skippedAll, err := agentlog.Read(dir, time.Time{})
		if err != nil || len(all)+skippedAll != lines {
			t.Fatalf("agentlog.Read: %d entries, %d skipped of %d lines, %v", len(all), skippedAll, lines, err)
		}
		recent, skippedRecent, err := agentlog.Read(dir, since)
		if err != nil || skippedRecent != skippedAll || len(recent) > len(all) {
			t.Fatalf("agentlog.Read since %v: %d entries, %d skipped; %d, %d without since, %v", since, len(recent), skippedRecent, len(all), skippedAll, err)
		}
		for _, e := range recent {
			if e.Time.Before(since) || e.Fields["time"] != nil || e.Fields["event"] != nil {
				t.Fatalf("entry %+v, asked since %v", e, since)
			}
		}
	})
}
