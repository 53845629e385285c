package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"

	"github.com/porthole/porthole/apitype"
)

// printable reports whether s shows as itself in a terminal: no escape,
// control or line-breaking character a server or device could send to
// redraw the engineer's screen.
func printable(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) })
}

// FuzzReplayEvents: a session's events.jsonl as `porthole replay` reads it
// from the server, uploaded by the device. parseEvents never panics, keeps
// at most one event a line, and every event shows as one printable line.
func FuzzReplayEvents(f *testing.F) {
	f.Add([]byte(`{"time":"2026-11-22T10:00:00Z","event":"connected","user":"ann@example.com"}
{"time":"2026-11-22T10:00:01Z","event":"process","process":1,"command":"ls\u001b[2J","run_as":"pi"}
{"time":"2026-11-22T10:00:02Z","event":"exit","process":1,"status":-1,"signal":"KILL\r"}
{"event":"sftp","op":"write","path":"/tmp/x\n","target":"\u2028","bytes":5,"error":"\u0007"}
{"event":"forward","target":"127.0.0.1:80","refused":"no\u0085"}
{"event":"truncated","what":"output","detail":"\u001b]0;title\u0007"}
{"event":"ended","reason":"idle_timeout"}
{"event":"disconnected"}
{"event":"\u001b[31mred"}
{"time":"2026-11-22T10:00:0`))
	f.Fuzz(func(t *testing.T, data []byte) {
		evs := parseEvents(data)
		if lines := strings.Count(string(data), "\n") + 1; len(evs) > lines {
			t.Fatalf("%d events from %d lines", len(evs), lines)
		}
		for _, ev := range evs {
			if line := formatEvent(ev); !printable(line) {
				t.Fatalf("event %+v shows as %q", ev, line)
			}
		}
	})
}

// FuzzAuditRow: an audit event as `porthole audit` lists it. The server
// sends it, but much of it came from elsewhere (an anonymous party's
// claimed name, a device's names, request details): every cell is
// printable.
func FuzzAuditRow(f *testing.F) {
	f.Add([]byte(`{"seq":7,"time":"2026-11-22T10:00:00Z","kind":"login_failed","actor":{"kind":"anonymous","name":"x\u001b[2J"},` +
		`"fleet":"acme","device":"dev1","session":"s\n1","detail":{"remote":"192.0.2.1:4000","why":"bad \"password\"","k\r":""}}`))
	f.Add([]byte(`{"kind":"session_closed\u0007","actor":{"kind":"system"},"device":"\u2028"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e apitype.AuditEvent
		if json.Unmarshal(data, &e) != nil {
			return
		}
		for _, cell := range auditRow(e) {
			if !printable(cell) {
				t.Fatalf("event %s has the cell %q", data, cell)
			}
		}
	})
}
