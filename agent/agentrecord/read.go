package agentrecord

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/asciicast"
)

// The owner's side of the recordings: these functions only read the state
// directory, so they work whether the agent runs or not, for root and for
// members of agentstate.OwnerGroup.

// ErrNoSession means no recording has the session id asked for.
var ErrNoSession = errors.New("agentrecord: no such session recorded")

// SessionInfo is a recorded session as the owner's commands list it.
type SessionInfo struct {
	SessionMeta
	Dir   string     `json:"dir"`
	Bytes int64      `json:"bytes"` // its files on disk
	Casts []CastInfo `json:"casts"`
	// Problem says why meta.json could not be read, if it could not.
	Problem string `json:"problem,omitempty"`
}

// Open reports whether the session is still being recorded (or its agent
// stopped and has not started again since).
func (s *SessionInfo) Open() bool { return s.End.IsZero() }

// Duration is how long the session lasted, or has lasted so far.
func (s *SessionInfo) Duration(now time.Time) time.Duration {
	if s.Start.IsZero() {
		return 0
	}
	if s.End.IsZero() {
		return now.Sub(s.Start)
	}
	return s.End.Sub(s.Start)
}

// CastInfo is one process's asciicast.
type CastInfo struct {
	File    string `json:"file"`
	Process int    `json:"process"`
	PTY     bool   `json:"pty"`
	Bytes   int64  `json:"bytes"`
}

// ListSessions lists the recorded sessions in the state directory, oldest
// first. No recordings at all is an empty list, not an error.
func ListSessions(stateDir string) ([]SessionInfo, error) {
	dir := filepath.Join(stateDir, SessionsDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(stateDir); serr != nil {
			return nil, agentstate.ReadError(stateDir, serr)
		}
		return nil, nil
	}
	if err != nil {
		return nil, agentstate.ReadError(dir, err)
	}
	var out []SessionInfo
	for _, e := range ents {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		out = append(out, readSessionDir(filepath.Join(dir, e.Name()), e.Name()))
	}
	slices.SortFunc(out, func(a, b SessionInfo) int {
		return cmp.Or(a.Start.Compare(b.Start), strings.Compare(a.Session, b.Session))
	})
	return out, nil
}

// FindSession returns the recorded session id, or the only one whose id
// starts with id.
func FindSession(stateDir, id string) (*SessionInfo, error) {
	if dir := SessionPath(stateDir, id); dir != "" {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			s := readSessionDir(dir, id)
			return &s, nil
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, agentstate.ReadError(dir, err)
		}
	}
	all, err := ListSessions(stateDir)
	if err != nil {
		return nil, err
	}
	var found []SessionInfo
	for _, s := range all {
		if id != "" && strings.HasPrefix(s.Session, id) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return nil, noSessionError(id)
	case 1:
		return &found[0], nil
	}
	ids := make([]string, len(found))
	for i, s := range found {
		ids[i] = s.Session
	}
	return nil, fmt.Errorf("%q could be any of %s; give more of the id", id, strings.Join(ids, ", "))
}

// noSessionError says, for the owner, that no session id is recorded; it
// matches ErrNoSession.
type noSessionError string

func (e noSessionError) Error() string {
	return fmt.Sprintf("no session %q is recorded on this device (porthole-agent sessions lists them)", string(e))
}

func (noSessionError) Is(target error) bool { return target == ErrNoSession }

// readSessionDir reads what a session directory holds.
func readSessionDir(dir, name string) SessionInfo {
	s := SessionInfo{Dir: dir}
	if m, err := readMeta(dir); err != nil {
		s.Problem = "no readable meta.json: " + err.Error()
		s.Session = name
	} else {
		s.SessionMeta = *m
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		s.Bytes += fi.Size()
		if c, ok := ParseCastName(e.Name()); ok {
			c.Bytes = fi.Size()
			s.Casts = append(s.Casts, c)
		}
	}
	slices.SortFunc(s.Casts, func(a, b CastInfo) int { return cmp.Compare(a.Process, b.Process) })
	return s
}

// ParseCastName reads a cast file name, such as "0001-pty.cast".
func ParseCastName(name string) (CastInfo, bool) {
	base, ok := strings.CutSuffix(name, castExt)
	if !ok {
		return CastInfo{}, false
	}
	num, kind, ok := strings.Cut(base, "-")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 1 || (kind != "pty" && kind != "exec") {
		return CastInfo{}, false
	}
	return CastInfo{File: name, Process: n, PTY: kind == "pty"}, true
}

// ReadSessionEvents reads a session's events.jsonl; skipped counts lines
// that could not be read.
func ReadSessionEvents(s *SessionInfo) (evs []SessionEvent, skipped int, err error) {
	f, err := os.Open(filepath.Join(s.Dir, SessionEventsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, agentstate.ReadError(s.Dir, err)
	}
	defer f.Close()
	skipped, err = agentlog.ForEachLine(f, func(line []byte) error {
		var ev SessionEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return err
		}
		evs = append(evs, ev)
		return nil
	})
	return evs, skipped, err
}

// ReplayOptions shape a replay.
type ReplayOptions struct {
	// Speed multiplies the pace. Zero: 1, as it happened.
	Speed float64
	// IdleLimit shortens longer pauses to itself, as asciinema's idle
	// time limit does. Zero: 2 seconds; negative: pauses as recorded.
	IdleLimit time.Duration
	// Exec also plays the output of commands run without a terminal;
	// by default only terminal sessions are played.
	Exec bool
	// Notes gets a line before each recording (which process, who, when)
	// and about what could not be played. Nil: nothing.
	Notes io.Writer
	// Sleep waits d, or returns ctx's error. Nil: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
}

// DefaultIdleLimit is ReplayOptions.IdleLimit's default.
const DefaultIdleLimit = 2 * time.Second

// Replay plays a session's terminal recordings to w with their timing,
// in the order their processes started. A session without any (only
// commands, file copies or forwards) has its events written instead, one
// line each.
func Replay(ctx context.Context, w io.Writer, s *SessionInfo, opts ReplayOptions) error {
	if opts.Speed <= 0 {
		opts.Speed = 1
	}
	if opts.IdleLimit == 0 {
		opts.IdleLimit = DefaultIdleLimit
	}
	if opts.Notes == nil {
		opts.Notes = io.Discard
	}
	evs, _, err := ReadSessionEvents(s)
	if err != nil {
		return err
	}
	procs := map[int]SessionEvent{}
	for _, ev := range evs {
		if ev.Event == SessionEventProcess {
			procs[ev.Process] = ev
		}
	}
	var casts []CastInfo
	for _, c := range s.Casts {
		if c.PTY || opts.Exec {
			casts = append(casts, c)
		}
	}
	if len(casts) == 0 {
		hint := ""
		if len(s.Casts) > 0 {
			hint = " (add --exec for the commands' output)"
		}
		fmt.Fprintf(opts.Notes, "porthole: no terminal session was recorded in %s%s; its events:\n", s.Session, hint)
		for _, ev := range evs {
			if _, err := fmt.Fprintln(w, FormatSessionEvent(ev)); err != nil {
				return err
			}
		}
		return nil
	}
	for i, c := range casts {
		p := procs[c.Process]
		what := "login shell"
		if p.Command != "" {
			what = strconv.Quote(p.Command)
		}
		fmt.Fprintf(opts.Notes, "porthole: [%d/%d] process %d of %s: %s", i+1, len(casts), c.Process, s.Session, what)
		if p.RunAs != "" {
			fmt.Fprintf(opts.Notes, " as %s", shown(p.RunAs))
		}
		if !p.Time.IsZero() {
			fmt.Fprintf(opts.Notes, ", %s", p.Time.Local().Format("2006-01-02 15:04:05"))
		}
		if p.PTY {
			fmt.Fprintf(opts.Notes, ", %dx%d", p.Cols, p.Rows)
		}
		fmt.Fprintln(opts.Notes)
		if err := playCast(ctx, w, filepath.Join(s.Dir, c.File), opts); err != nil {
			return err
		}
	}
	return nil
}

// playCast writes an asciicast's output events to w with their timing.
func playCast(ctx context.Context, w io.Writer, path string, opts ReplayOptions) error {
	f, err := os.Open(path)
	if err != nil {
		return agentstate.ReadError(path, err)
	}
	defer f.Close()
	skipped, err := asciicast.Play(ctx, w, f, asciicast.PlayOptions{Speed: opts.Speed, IdleLimit: opts.IdleLimit, Sleep: opts.Sleep})
	if errors.Is(err, asciicast.ErrNotCast) {
		return fmt.Errorf("%s is not an asciicast v2 recording", path)
	} else if err != nil {
		return err
	}
	if skipped > 0 {
		fmt.Fprintf(opts.Notes, "porthole: skipped %d unreadable lines of %s\n", skipped, filepath.Base(path))
	}
	return nil
}

// FormatSessionEvent writes an event of events.jsonl as one line for a
// person. Its text is shown: the engineer chose the file names, commands
// and targets in it, and must not drive the owner's terminal with them.
func FormatSessionEvent(ev SessionEvent) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-12s ", ev.Time.Local().Format("2006-01-02 15:04:05"), shown(ev.Event))
	switch ev.Event {
	case SessionEventConnected:
		b.WriteString(shown(ev.User))
		if !ev.ValidBefore.IsZero() {
			fmt.Fprintf(&b, " (certificate valid until %s)", ev.ValidBefore.Local().Format("15:04"))
		}
	case SessionEventDisconnected:
		if ev.Reason == "" {
			b.WriteString("the engineer hung up")
		} else {
			b.WriteString(shown(ev.Reason))
		}
	case SessionEventProcess:
		what := "login shell"
		if ev.Command != "" {
			what = strconv.Quote(ev.Command)
		}
		fmt.Fprintf(&b, "#%d %s", ev.Process, what)
		if ev.RunAs != "" {
			fmt.Fprintf(&b, " as %s", shown(ev.RunAs))
		}
		if ev.PTY {
			fmt.Fprintf(&b, " on a %dx%d terminal", ev.Cols, ev.Rows)
		}
	case SessionEventExit:
		fmt.Fprintf(&b, "#%d ", ev.Process)
		switch {
		case ev.Signal != "":
			fmt.Fprintf(&b, "killed by SIG%s", shown(ev.Signal))
		case ev.Status != nil:
			fmt.Fprintf(&b, "status %d", *ev.Status)
		}
		if ev.Killed {
			b.WriteString(" (ended with its session)")
		}
		fmt.Fprintf(&b, " after %v, %v in, %v out", time.Duration(ev.DurationMS)*time.Millisecond, ByteSize(ev.In), ByteSize(ev.Out))
		if ev.Truncated {
			b.WriteString(", output not all recorded")
		}
	case SessionEventSFTP:
		fmt.Fprintf(&b, "%s %s", shown(ev.Op), shown(ev.Path))
		if ev.Target != "" {
			fmt.Fprintf(&b, " -> %s", shown(ev.Target))
		}
		if ev.Bytes > 0 || ev.Op == "read" || ev.Op == "write" {
			fmt.Fprintf(&b, " (%v)", ByteSize(ev.Bytes))
		}
		if ev.Error != "" {
			fmt.Fprintf(&b, ": failed, %s", shown(ev.Error))
		}
	case SessionEventForward:
		b.WriteString(shown(ev.Target))
		if ev.Refused != "" {
			fmt.Fprintf(&b, ": refused, %s", shown(ev.Refused))
		} else {
			fmt.Fprintf(&b, ", %v in, %v out, open %v", ByteSize(ev.In), ByteSize(ev.Out), time.Duration(ev.DurationMS)*time.Millisecond)
		}
	case SessionEventTruncated:
		fmt.Fprintf(&b, "%s: %s", shown(ev.What), shown(ev.Detail))
	case SessionEventEnded:
		b.WriteString(shown(ev.Reason))
	default:
		raw, _ := json.Marshal(ev)
		b.Write(raw)
	}
	return strings.TrimRight(b.String(), " ")
}

// shown is s as it may reach the owner's terminal: as it is when every
// character shows as itself, else quoted with the others escaped.
func shown(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) }) {
		return strconv.QuoteToGraphic(s)
	}
	return s
}
