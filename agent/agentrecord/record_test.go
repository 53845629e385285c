package agentrecord

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/agent/internal/agenttest"
	"github.com/porthole/porthole/agentssh"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/sessioncert"
	"github.com/porthole/porthole/yamlconf"
)

// openRecordings opens recordings in a fresh state directory.
func openRecordings(t *testing.T, cfg Config, edit func(*Options)) *Recordings {
	t.Helper()
	opts := Options{StateDir: t.TempDir(), Config: cfg, Device: "dev1"}
	if edit != nil {
		edit(&opts)
	}
	if opts.Log == nil {
		opts.Log = agenttest.OpenLog(t, opts.StateDir)
	}
	r, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func ann() sessioncert.Claims {
	now := time.Now()
	return sessioncert.Claims{Session: "ses_1", Fleet: "acme", Device: "dev1", DeviceID: "dev_1",
		User: "ann@example.com", ValidAfter: now.Add(-time.Minute), ValidBefore: now.Add(time.Hour)}
}

// session returns a recorded session, failing the test if there is none.
func recorded(t *testing.T, r *Recordings, id string) *SessionInfo {
	t.Helper()
	s, err := FindSession(r.stateDir, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func events(t *testing.T, s *SessionInfo) []SessionEvent {
	t.Helper()
	evs, skipped, err := ReadSessionEvents(s)
	if err != nil || skipped != 0 {
		t.Fatalf("events.jsonl: %v, %d lines skipped", err, skipped)
	}
	return evs
}

func kinds(evs []SessionEvent) string {
	var k []string
	for _, ev := range evs {
		k = append(k, ev.Event)
	}
	return strings.Join(k, " ")
}

// castEvent is one event line of an asciicast.
type castEvent struct {
	T    float64
	Kind string
	Data string
}

// readCast reads an asciicast strictly: every line must parse.
func readCast(t *testing.T, path string) (CastHeader, []castEvent) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var h CastHeader
	if err := json.Unmarshal([]byte(lines[0]), &h); err != nil {
		t.Fatalf("header %q: %v", lines[0], err)
	}
	var evs []castEvent
	for _, l := range lines[1:] {
		var raw []any
		if err := json.Unmarshal([]byte(l), &raw); err != nil || len(raw) != 3 {
			t.Fatalf("event line %q: %v", l, err)
		}
		evs = append(evs, castEvent{raw[0].(float64), raw[1].(string), raw[2].(string)})
	}
	return h, evs
}

func castData(evs []castEvent, kind string) string {
	var b strings.Builder
	for _, e := range evs {
		if e.Kind == kind {
			b.WriteString(e.Data)
		}
	}
	return b.String()
}

func logEvents(t *testing.T, stateDir string) []agentlog.Entry {
	t.Helper()
	entries, skipped, err := agentlog.Read(stateDir, time.Time{})
	if err != nil || skipped != 0 {
		t.Fatalf("agent.log: %v, %d skipped", err, skipped)
	}
	return entries
}

func logKinds(entries []agentlog.Entry) string {
	var k []string
	for _, e := range entries {
		k = append(k, e.Event)
	}
	return strings.Join(k, " ")
}

// scriptedSession drives a recorder through a session: a shell with a
// terminal, a command, a file copy and two forwards.
func scriptedSession(r agentssh.Recorder, id string) {
	r.Connected(id, ann())
	start := time.Now()
	sh := r.Process(id, agentssh.Process{Channel: 1, User: "pi", PTY: true, Term: "xterm", Cols: 100, Rows: 40, Start: start})
	sh.Output([]byte("$ "))
	sh.Input([]byte("ls /etc\r"))
	sh.Output([]byte("ls /etc\r\npasswd  hosts\r\n$ "))
	sh.Resize(132, 50)
	sh.Input([]byte("exit\r"))
	sh.Exited(agentssh.Exit{Status: 0, Took: time.Second})
	cmd := r.Process(id, agentssh.Process{Channel: 2, User: "pi", Command: "uname -a", Start: start})
	cmd.Output([]byte("Linux dev1\n"))
	cmd.Exited(agentssh.Exit{Status: 3, Took: 5 * time.Millisecond})
	r.SFTP(id, agentssh.SFTPOp{Op: "write", Path: "/tmp/fw.bin", Bytes: 12345})
	r.SFTP(id, agentssh.SFTPOp{Op: "remove", Path: "/etc/shadow", Err: "permission denied"})
	r.Forward(id, agentssh.Forward{Target: "127.0.0.1:80", In: 100, Out: 2000, Start: start, Duration: 2 * time.Second})
	r.Forward(id, agentssh.Forward{Target: "127.0.0.1:25", Refused: "port 25 is not among the ports the owner allows"})
	r.Disconnected(id, "")
}

func TestRecordSession(t *testing.T) {
	for _, recordInput := range []bool{false, true} {
		t.Run("record_input="+map[bool]string{false: "false", true: "true"}[recordInput], func(t *testing.T) {
			r := openRecordings(t, Config{}, func(o *Options) { o.RecordInput = recordInput })
			scriptedSession(r, "ses_1")
			if s := recorded(t, r, "ses_1"); !s.Open() {
				t.Errorf("session ended before SessionEnded: %+v", s.SessionMeta)
			}
			r.SessionEnded("ses_1", control.CloseIdleTimeout)

			s := recorded(t, r, "ses_1")
			m := s.SessionMeta
			if s.Open() || m.Reason != string(control.CloseIdleTimeout) || len(m.Who) != 1 || m.Who[0].User != "ann@example.com" ||
				m.Connections != 1 || m.Processes != 2 || m.RecordInput != recordInput || len(m.Truncated) != 0 || m.Device != "dev1" {
				t.Errorf("meta = %+v", m)
			}
			if m.OutputBytes != int64(len("$ ls /etc\r\npasswd  hosts\r\n$ Linux dev1\n")) || m.InputBytes != int64(len("ls /etc\rexit\r")) {
				t.Errorf("meta output %d, input %d bytes", m.OutputBytes, m.InputBytes)
			}
			evs := events(t, s)
			if got, want := kinds(evs), "connected process exit process exit sftp sftp forward forward disconnected ended"; got != want {
				t.Fatalf("events = %s; want %s", got, want)
			}
			if e := evs[0]; e.User != "ann@example.com" || e.ValidBefore.IsZero() {
				t.Errorf("connected = %+v", e)
			}
			if e := evs[1]; e.Process != 1 || !e.PTY || e.Command != "" || e.RunAs != "pi" || e.Cols != 100 || e.Rows != 40 || e.Term != "xterm" {
				t.Errorf("process = %+v", e)
			}
			if e := evs[4]; e.Process != 2 || *e.Status != 3 || e.Cast != "0002-exec.cast" || e.Out != 11 {
				t.Errorf("exit = %+v", e)
			}
			if e := evs[5]; e.Op != "write" || e.Path != "/tmp/fw.bin" || e.Bytes != 12345 {
				t.Errorf("sftp = %+v", e)
			}
			if e := evs[6]; e.Op != "remove" || e.Error != "permission denied" {
				t.Errorf("sftp = %+v", e)
			}
			if e := evs[7]; e.Target != "127.0.0.1:80" || e.In != 100 || e.Out != 2000 || e.DurationMS != 2000 {
				t.Errorf("forward = %+v", e)
			}
			if e := evs[8]; e.Refused == "" {
				t.Errorf("refused forward = %+v", e)
			}
			if e := evs[10]; e.Reason != string(control.CloseIdleTimeout) {
				t.Errorf("ended = %+v", e)
			}

			if len(s.Casts) != 2 || s.Casts[0].File != "0001-pty.cast" || !s.Casts[0].PTY || s.Casts[1].File != "0002-exec.cast" {
				t.Fatalf("casts = %+v", s.Casts)
			}
			h, ce := readCast(t, filepath.Join(s.Dir, "0001-pty.cast"))
			if h.Version != 2 || h.Width != 100 || h.Height != 40 || h.Env["TERM"] != "xterm" || h.Timestamp == 0 ||
				!strings.Contains(h.Title, "ann@example.com on dev1: login shell") {
				t.Errorf("header = %+v", h)
			}
			if out := castData(ce, "o"); out != "$ ls /etc\r\npasswd  hosts\r\n$ " {
				t.Errorf("output = %q", out)
			}
			if got := castData(ce, "r"); got != "132x50" {
				t.Errorf("resizes = %q", got)
			}
			in := castData(ce, "i")
			if recordInput && in != "ls /etc\rexit\r" || !recordInput && in != "" {
				t.Errorf("input recorded = %q with record_input %v", in, recordInput)
			}
			h, ce = readCast(t, filepath.Join(s.Dir, "0002-exec.cast"))
			if h.Width != 80 || h.Height != 24 || h.Command != "uname -a" || castData(ce, "o") != "Linux dev1\n" {
				t.Errorf("exec cast = %+v %+v", h, ce)
			}

			if got, want := logKinds(logEvents(t, r.stateDir)), "engineer_connected engineer_disconnected session_ended"; got != want {
				t.Errorf("agent.log = %s; want %s", got, want)
			}
			checkModes(t, r.stateDir)
		})
	}
}

// checkModes: the owner's group may read the log and recordings, nobody
// else anything.
func checkModes(t *testing.T, stateDir string) {
	t.Helper()
	filepath.WalkDir(filepath.Join(stateDir, SessionsDir), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := d.Info()
		want := agentstate.SharedFileMode
		if d.IsDir() {
			want = agentstate.SharedDirMode
		}
		if d.Name() == sessionsLockFile {
			want = 0o600
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v; want %v", path, fi.Mode().Perm(), want)
		}
		return nil
	})
	if fi, err := os.Stat(filepath.Join(stateDir, agentlog.File)); err != nil || fi.Mode().Perm() != agentstate.SharedFileMode {
		t.Errorf("agent.log: %v %v", fi, err)
	}
}

// TestRecordGroup: with the owner's group present, files and directories
// are given to it, and it may enter the state directory, no more.
func TestRecordGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to give files to another group")
	}
	const group = "daemon"
	gid := agentstate.LookupGroup(group)
	if gid < 0 {
		t.Skip("no group " + group)
	}
	r := openRecordings(t, Config{}, func(o *Options) {
		os.Chmod(o.StateDir, 0o700)
		o.Group = group
	})
	scriptedSession(r, "ses_1")
	r.SessionEnded("ses_1", control.CloseOnCommand)
	fi, _ := os.Stat(r.stateDir)
	if st := fi.Sys().(*syscall.Stat_t); int(st.Gid) != gid || fi.Mode().Perm() != 0o710 {
		t.Errorf("state dir: gid %d, mode %v; want %d, 0710", st.Gid, fi.Mode().Perm(), gid)
	}
	filepath.WalkDir(filepath.Join(r.stateDir, SessionsDir), func(path string, d os.DirEntry, err error) error {
		fi, _ := d.Info()
		if st := fi.Sys().(*syscall.Stat_t); int(st.Gid) != gid && d.Name() != sessionsLockFile {
			t.Errorf("%s: gid %d; want %d", path, st.Gid, gid)
		}
		return nil
	})
}

// TestRecordUTF8: a character cut between two chunks of output stays one
// character; bytes that are not text become U+FFFD, and the cast still
// parses.
func TestRecordUTF8(t *testing.T) {
	r := openRecordings(t, Config{}, nil)
	r.Connected("ses_1", ann())
	p := r.Process("ses_1", agentssh.Process{Channel: 1, PTY: true, Cols: 80, Rows: 24, Start: time.Now()})
	é := []byte("é€😀")
	for _, b := range é {
		p.Output([]byte{b})
	}
	p.Output([]byte{'"', '\\', 0, 0x1b, '[', 'm', 0xff, '\n', 0xe2, 0x80})
	p.Exited(agentssh.Exit{})
	r.SessionEnded("ses_1", control.CloseOnCommand)
	s := recorded(t, r, "ses_1")
	_, ce := readCast(t, filepath.Join(s.Dir, s.Casts[0].File))
	if got, want := castData(ce, "o"), "é€😀\"\\\x00\x1b[m\ufffd\n\ufffd\ufffd"; got != want {
		t.Errorf("output = %q; want %q", got, want)
	}
}

// TestRecordFlood: an engineer's `cat /dev/urandom` and a storm of file
// operations stay within small caps, each with its marker, and the
// session's metadata goes on being recorded. The first cap reached fails
// the session closed (Full), and once what was running has spent the tail
// past max_events the session is ended as one that cannot be recorded.
func TestRecordFlood(t *testing.T) {
	cfg := Config{MaxSession: 16 << 10, MaxEvents: 4 << 10, MaxTotal: 64 << 10}
	r := openRecordings(t, cfg, nil)
	r.Connected("ses_1", ann())
	p := r.Process("ses_1", agentssh.Process{Channel: 1, Command: "cat /dev/urandom", Start: time.Now()})
	chunk := make([]byte, 32<<10)
	for range 64 { // 2 MiB
		rand.Read(chunk)
		p.Output(chunk)
	}
	if why := r.Full("ses_1"); !strings.Contains(why, "recordings.max_session (16KiB)") || !strings.Contains(why, "open a new session") {
		t.Errorf("Full after the output cap = %q", why)
	}
	p2 := r.Process("ses_1", agentssh.Process{Channel: 2, PTY: true, Cols: 80, Rows: 24, Start: time.Now()})
	p2.Output([]byte("after the cap"))
	p2.Exited(agentssh.Exit{})
	p.Exited(agentssh.Exit{Status: -1, Signal: "INT"})
	for range 500 {
		r.SFTP("ses_1", agentssh.SFTPOp{Op: "list", Path: "/usr/share/doc/some/long/path"})
	}
	r.Disconnected("ses_1", "")
	r.SessionEnded("ses_1", control.CloseOnCommand)

	s := recorded(t, r, "ses_1")
	if len(s.Casts) != 1 {
		t.Fatalf("casts = %+v; want only the flood's (the shell came after the cap)", s.Casts)
	}
	const marker = 300 // a marker line and the ended line, at most
	if c := s.Casts[0]; c.Bytes > int64(cfg.MaxSession)+marker {
		t.Errorf("cast takes %d bytes; cap %d", c.Bytes, cfg.MaxSession)
	}
	_, ce := readCast(t, filepath.Join(s.Dir, s.Casts[0].File))
	if last := ce[len(ce)-1]; !strings.Contains(last.Data, "[porthole: recording truncated at 16KiB: the session reached recordings.max_session (16KiB)]") {
		t.Errorf("last event %q; want the truncation marker", last.Data)
	}
	fi, _ := os.Stat(filepath.Join(s.Dir, SessionEventsFile))
	if fi.Size() > int64(cfg.MaxEvents)+eventsTail+2*marker {
		t.Errorf("events.jsonl takes %d bytes; cap %d", fi.Size(), cfg.MaxEvents)
	}
	evs := events(t, s)
	var truncs []string
	for _, ev := range evs {
		if ev.Event == SessionEventTruncated {
			truncs = append(truncs, ev.What)
		}
	}
	if !slices.Equal(truncs, []string{"output", "events"}) {
		t.Errorf("truncation entries %v; want output, events", truncs)
	}
	if last := evs[len(evs)-1]; last.Event != SessionEventEnded {
		t.Errorf("last event %+v; want ended, even past the cap", last)
	}
	if exit := findEvent(evs, SessionEventExit, 1); exit == nil || !exit.Truncated || exit.Out != 2<<20 {
		t.Errorf("flood's exit = %+v; want truncated with all 2 MiB counted", exit)
	}
	if !slices.Equal(s.Truncated, []string{"output", "events"}) || s.OutputBytes != 2<<20+13 {
		t.Errorf("meta truncated %v, output %d", s.Truncated, s.OutputBytes)
	}
	if s.Bytes > int64(cfg.MaxSession+cfg.MaxEvents)+4<<10 {
		t.Errorf("the session takes %d bytes", s.Bytes)
	}
	if got := logKinds(logEvents(t, r.stateDir)); got != "engineer_connected recording_truncated recording_truncated recording_failed engineer_disconnected session_ended" {
		t.Errorf("agent.log = %s", got)
	}
}

func findEvent(evs []SessionEvent, kind string, process int) *SessionEvent {
	for i, ev := range evs {
		if ev.Event == kind && ev.Process == process {
			return &evs[i]
		}
	}
	return nil
}

// TestRecordTotalCap: sessions at once cannot together pass max_total.
func TestRecordTotalCap(t *testing.T) {
	cfg := Config{MaxSession: 32 << 10, MaxEvents: 4 << 10, MaxTotal: 40 << 10}
	r := openRecordings(t, cfg, nil)
	var wg sync.WaitGroup
	for _, id := range []string{"ses_a", "ses_b", "ses_c"} {
		wg.Go(func() {
			r.Connected(id, ann())
			p := r.Process(id, agentssh.Process{Channel: 1, Command: "yes", Start: time.Now()})
			line := bytes.Repeat([]byte("y\n"), 1024)
			for range 64 {
				p.Output(line)
			}
			p.Exited(agentssh.Exit{})
			r.Disconnected(id, "")
		})
	}
	wg.Wait()
	var total int64
	for _, id := range []string{"ses_a", "ses_b", "ses_c"} {
		total += recorded(t, r, id).Bytes
	}
	if limit := int64(cfg.MaxTotal) + 3*2<<10; total > limit {
		t.Errorf("three sessions take %d bytes; max_total %d", total, cfg.MaxTotal)
	}
	for _, id := range []string{"ses_a", "ses_b", "ses_c"} {
		r.SessionEnded(id, control.CloseOnCommand)
	}
}

// writeOldSession makes a finished session's directory as a previous run
// would have left it.
func writeOldSession(t *testing.T, stateDir, id string, start, end time.Time, size int) {
	t.Helper()
	dir := filepath.Join(stateDir, SessionsDir, id)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	m := SessionMeta{Session: id, Start: start, End: end, Reason: string(control.CloseOnCommand)}
	data, _ := json.Marshal(m)
	os.WriteFile(filepath.Join(dir, SessionMetaFile), data, 0o640)
	os.WriteFile(filepath.Join(dir, SessionEventsFile), []byte(`{"time":"2026-01-01T00:00:00Z","event":"connected"}`+"\n"), 0o640)
	os.WriteFile(filepath.Join(dir, "0001-pty.cast"), bytes.Repeat([]byte("x"), size), 0o640)
}

func TestRetention(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	state := t.TempDir()
	day := 24 * time.Hour
	// Oldest first; 10 KiB each.
	writeOldSession(t, state, "ses_ancient", now.Add(-40*day), now.Add(-40*day+time.Hour), 10<<10)
	writeOldSession(t, state, "ses_old", now.Add(-5*day), now.Add(-5*day+time.Hour), 10<<10)
	writeOldSession(t, state, "ses_mid", now.Add(-3*day), now.Add(-3*day+time.Hour), 10<<10)
	writeOldSession(t, state, "ses_new", now.Add(-1*day), now.Add(-1*day+time.Hour), 10<<10)
	// Left open by an agent that died an hour ago.
	writeOldSession(t, state, "ses_crash", now.Add(-2*time.Hour), time.Time{}, 1<<10)
	os.WriteFile(filepath.Join(state, SessionsDir, "ses_crash", SessionEventsFile), []byte(`{"time":"2026-11-22T10:00:00Z","event":"connected"}`+"\n"+`{"time":"2026-11-22T10:00:01Z","ev`), 0o640)

	cfg := Config{MaxSession: 12 << 10, MaxEvents: 2 << 10, MaxTotal: 32 << 10, Keep: Age(30 * day)}
	r, err := Open(Options{StateDir: state, Log: agenttest.OpenLog(t, state), Config: cfg, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ids := func() []string {
		all, err := ListSessions(state)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range all {
			ids = append(ids, s.Session)
		}
		return ids
	}
	// ancient is past keep; then ~42 KiB is over 32 KiB: old goes.
	if got, want := ids(), []string{"ses_mid", "ses_new", "ses_crash"}; !slices.Equal(got, want) {
		t.Errorf("after start: sessions %v; want %v", got, want)
	}
	crash := recorded(t, r, "ses_crash")
	if crash.Reason != string(control.CloseInterrupted) || crash.End.IsZero() {
		t.Errorf("interrupted session: %+v", crash.SessionMeta)
	}
	// The partial line a crash left is closed off, so the next one reads.
	if evs, skipped, err := ReadSessionEvents(crash); err != nil || skipped != 1 || kinds(evs) != "connected ended" {
		t.Errorf("interrupted session's events: %s, %d skipped, %v; want connected ended, 1 skipped", kinds(evs), skipped, err)
	}
	// A new session needs room for a whole session (14 KiB): mid goes.
	r.Connected("ses_next", ann())
	if got, want := ids(), []string{"ses_new", "ses_crash", "ses_next"}; !slices.Equal(got, want) {
		t.Errorf("after a new session: sessions %v; want %v", got, want)
	}
	// Being recorded, it is never deleted, even when everything is old.
	now = now.Add(60 * day)
	r.prune(0, "")
	if got, want := ids(), []string{"ses_next"}; !slices.Equal(got, want) {
		t.Errorf("60 days later: sessions %v; want %v", got, want)
	}
	r.SessionEnded("ses_next", control.CloseOnCommand)
	r.Close()

	var deleted []string
	for _, e := range logEvents(t, state) {
		if e.Event == eventRecordingDeleted {
			deleted = append(deleted, e.Fields["session"].(string)+":"+e.Fields["reason"].(string))
		}
	}
	want := []string{"ses_ancient:keep", "ses_old:max_total", "ses_mid:max_total", "ses_new:keep", "ses_crash:keep"}
	if !slices.Equal(deleted, want) {
		t.Errorf("agent.log deletions %v; want %v", deleted, want)
	}
}

// TestRecordingsLock: one recorder per state directory.
func TestRecordingsLock(t *testing.T) {
	r := openRecordings(t, Config{}, nil)
	_, err := Open(Options{StateDir: r.stateDir, Log: r.events})
	if !errors.Is(err, agentstate.ErrAlreadyRunning) {
		t.Errorf("second Open = %v; want agentstate.ErrAlreadyRunning", err)
	}
}

// TestRecordConfigErrors: caps that cannot work are refused with words.
// (agent's TestParseRecordingsConfig reads the same section inside
// agent.yaml.)
func TestRecordConfigErrors(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"max_session: lots\n", `line 1: "lots" is not a size`},
		{"keep: forever\n", `line 1: "forever" is not a length of time`},
		{"keep: 20000w\n", `line 1: "20000w" is not a length of time`}, // past time.Duration
		{"max_session: 100\n", "too small"},
		{"max_total: 10MiB\n", "must leave room for one whole session"},
		{"max_sesion: 1MiB\n", `line 1: unknown key "max_sesion"`},
		{"max_events: -1\n", "is not a size"},
	} {
		var c Config
		err := yamlconf.Decode([]byte(tt.yaml), &c)
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: %v; want %q", tt.yaml, err, tt.want)
		}
	}
	var rc Config
	if err := yamlconf.Decode([]byte("max_session: 1.5MiB\nmax_events: 512KiB\nmax_total: 1GB\nkeep: 2w\n"), &rc); err != nil || rc.Validate() != nil {
		t.Fatal(err, rc.Validate())
	}
	if rc.MaxSession != 3<<19 || rc.MaxEvents != 512<<10 || rc.MaxTotal != 1e9 || time.Duration(rc.Keep) != 14*24*time.Hour {
		t.Errorf("parsed %+v", rc)
	}
	if err := (Config{MaxSession: -1}).Validate(); err == nil {
		t.Error("a negative max_session passed Validate")
	}
	var zero Config
	if zero.maxSession() != 64<<20 || zero.maxEvents() != 16<<20 || zero.maxTotal() != 512<<20 || zero.keep() != 30*24*time.Hour {
		t.Errorf("defaults %d %d %d %v", zero.maxSession(), zero.maxEvents(), zero.maxTotal(), zero.keep())
	}
	for _, tt := range []struct {
		b    ByteSize
		want string
	}{{64 << 20, "64MiB"}, {3 << 29, "1.5GiB"}, {900, "900B"}, {1 << 10, "1KiB"}} {
		if got := tt.b.String(); got != tt.want {
			t.Errorf("ByteSize(%d) = %q; want %q", int64(tt.b), got, tt.want)
		}
	}
}

// TestRecordAfterClose: calls after Close record nothing, and the open
// session's recording is closed as the agent stops.
func TestRecordAfterClose(t *testing.T) {
	r := openRecordings(t, Config{}, nil)
	r.Connected("ses_1", ann())
	p := r.Process("ses_1", agentssh.Process{Channel: 1, PTY: true, Cols: 80, Rows: 24, Start: time.Now()})
	p.Output([]byte("before"))
	r.Close()
	p.Output([]byte("after"))
	p.Exited(agentssh.Exit{})
	r.Disconnected("ses_1", "")
	s := recorded(t, r, "ses_1")
	if s.Reason != string(control.CloseAgentStopping) {
		t.Errorf("reason %q; want %q", s.Reason, control.CloseAgentStopping)
	}
	_, ce := readCast(t, filepath.Join(s.Dir, s.Casts[0].File))
	if got := castData(ce, "o"); got != "before" {
		t.Errorf("output %q; want only what came before Close", got)
	}
}

// TestRecordFlushes: buffered output reaches the disk within FlushEvery,
// and Changed says so.
func TestRecordFlushes(t *testing.T) {
	changed := make(chan string, 10)
	r := openRecordings(t, Config{}, func(o *Options) {
		o.FlushEvery = 10 * time.Millisecond
		o.Changed = func(s string) {
			select {
			case changed <- s:
			default:
			}
		}
	})
	r.Connected("ses_1", ann())
	p := r.Process("ses_1", agentssh.Process{Channel: 1, PTY: true, Cols: 80, Rows: 24, Start: time.Now()})
	p.Output([]byte("hello"))
	select {
	case s := <-changed:
		if s != "ses_1" {
			t.Errorf("Changed(%q)", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Changed was not called")
	}
	data, _ := os.ReadFile(filepath.Join(recorded(t, r, "ses_1").Dir, "0001-pty.cast"))
	if !bytes.Contains(data, []byte("hello")) {
		t.Errorf("cast on disk %q; want the output flushed", data)
	}
	p.Exited(agentssh.Exit{})
	r.SessionEnded("ses_1", control.CloseOnCommand)
}

// TestRecordConnectionLoop: an engineer connecting in a loop cannot fill
// agent.log; the session's events keep every connection, within their cap.
func TestRecordConnectionLoop(t *testing.T) {
	r := openRecordings(t, Config{}, nil)
	const loops = maxLoggedConnections + 5
	who := ann()
	for range loops {
		r.Connected("ses_1", who)
		r.Disconnected("ses_1", "")
	}
	r.SessionEnded("ses_1", control.CloseOnCommand)
	entries := logEvents(t, r.stateDir)
	if len(entries) != 2*maxLoggedConnections+1 {
		t.Errorf("agent.log has %d lines; want %d", len(entries), 2*maxLoggedConnections+1)
	}
	if d, _ := entries[2*maxLoggedConnections-2].Fields["detail"].(string); !strings.Contains(d, "only in its events.jsonl") {
		t.Errorf("the last connection told of in agent.log does not say the rest are elsewhere: %+v", entries[2*maxLoggedConnections-2])
	}
	s := recorded(t, r, "ses_1")
	if s.Connections != loops || len(s.Who) != 1 {
		t.Errorf("meta: %d connections, who %+v", s.Connections, s.Who)
	}
	if n := strings.Count(kinds(events(t, s)), "disconnected"); n != loops {
		t.Errorf("events.jsonl has %d disconnections; want %d", n, loops)
	}
}
