package cli

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/asciicast"
)

func newReplay(a *app) *cobra.Command {
	var speed float64
	var idle time.Duration
	var withExec bool
	cmd := &cobra.Command{
		Use:   "replay SESSION [--speed N] [--idle-limit D] [--exec]",
		Short: "Play back a session's recording, as its device uploaded it (fleet auditors and up)",
		Long: `Play back what the engineer's terminal showed during a session, at the pace it
happened, from the recording the device uploaded to the server during and after
the session. SESSION is an ID as ` + "`porthole sessions`" + ` shows it. A session with
several terminals plays them one after the other, in the order they were
opened. --speed 2 plays twice as fast; pauses longer than --idle-limit are cut
short to it, as asciinema does (0 keeps them as they were).

Commands run without a terminal (porthole ssh DEVICE -- COMMAND, rsync) are
played too with --exec. A session without any terminal output (file copies,
port forwards) prints its events instead: every connection, command with its
exit status, file operation and forward.

Which recording plays goes to standard error, the session itself to standard
output. A recording the device has not finished sending plays as far as it
arrived.`,
		Example: "  porthole replay ses_k3m9q2x7p4t8w6za\n  porthole replay ses_k3m9q2x7p4t8w6za --speed 4 --idle-limit 1s",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if speed <= 0 {
				return &userError{msg: "--speed must be more than 0 (2 plays twice as fast, 0.5 half as fast)"}
			}
			c, err := a.connect()
			if err != nil {
				return err
			}
			err = a.replay(cmd.Context(), c, args[0], replayOptions{speed: speed, idle: idle, exec: withExec})
			if terminalFd(a.io.Out) >= 0 {
				// What the session left set (colours, a hidden cursor)
				// should not stay in the engineer's terminal.
				io.WriteString(a.io.Out, "\x1b[0m\x1b[?25h\r\n")
			}
			if err != nil && cmd.Context().Err() != nil {
				return nil // interrupted
			}
			return err
		},
	}
	f := cmd.Flags()
	f.Float64Var(&speed, "speed", 1, "play N times as fast")
	f.DurationVar(&idle, "idle-limit", 2*time.Second, "cut longer pauses to this (0: as recorded)")
	f.BoolVar(&withExec, "exec", false, "also play the output of commands run without a terminal")
	return cmd
}

type replayOptions struct {
	speed float64
	idle  time.Duration
	exec  bool
	sleep func(context.Context, time.Duration) error // nil: a timer
}

// castFile is an asciicast of the recording: NNNN-pty.cast or
// NNNN-exec.cast, for the session's process NNNN.
type castFile struct {
	name    string
	process int
	pty     bool
}

func parseCast(name string) (castFile, bool) {
	base, ok := strings.CutSuffix(name, ".cast")
	num, kind, ok2 := strings.Cut(base, "-")
	n, err := strconv.Atoi(num)
	if !ok || !ok2 || err != nil || n < 1 || (kind != "pty" && kind != "exec") {
		return castFile{}, false
	}
	return castFile{name: name, process: n, pty: kind == "pty"}, true
}

// sessionEvent is what replay reads of a line of events.jsonl.
type sessionEvent struct {
	Time    time.Time `json:"time"`
	Event   string    `json:"event"`
	User    string    `json:"user"`
	Reason  string    `json:"reason"`
	Process int       `json:"process"`
	Command string    `json:"command"`
	RunAs   string    `json:"run_as"`
	PTY     bool      `json:"pty"`
	Cols    int       `json:"cols"`
	Rows    int       `json:"rows"`
	Status  *int      `json:"status"`
	Signal  string    `json:"signal"`
	Op      string    `json:"op"`
	Path    string    `json:"path"`
	Target  string    `json:"target"`
	Bytes   int64     `json:"bytes"`
	Error   string    `json:"error"`
	Refused string    `json:"refused"`
	In      int64     `json:"in"`
	Out     int64     `json:"out"`
	What    string    `json:"what"`
	Detail  string    `json:"detail"`
}

// replay plays a session's uploaded recording.
func (a *app) replay(ctx context.Context, c *apiclient.Client, id string, opts replayOptions) error {
	rec, err := c.Recording(ctx, id)
	if err != nil {
		return err
	}
	if len(rec.Files) == 0 {
		return &userError{msg: fmt.Sprintf("nothing of session %s on %s has reached the server yet: its device sends the recording "+
			"during and after the session, once an engineer connected (it may be offline now)", id, rec.Session.Device)}
	}
	if !rec.Complete {
		fmt.Fprintf(a.io.Err, "porthole: %s has not finished sending session %s; playing what arrived so far\n", rec.Session.Device, id)
	}
	var evs []sessionEvent
	var casts []castFile
	for _, f := range rec.Files {
		if f.Name == "events.jsonl" {
			if evs, err = readEvents(ctx, c, id); err != nil {
				return err
			}
		} else if cf, ok := parseCast(f.Name); ok && (cf.pty || opts.exec) {
			casts = append(casts, cf)
		}
	}
	slices.SortFunc(casts, func(x, y castFile) int { return x.process - y.process })
	if len(casts) == 0 {
		hint := ""
		if slices.ContainsFunc(rec.Files, func(f apitype.RecordingFile) bool { return strings.HasSuffix(f.Name, "-exec.cast") }) {
			hint = " (add --exec for the commands' output)"
		}
		fmt.Fprintf(a.io.Err, "porthole: no terminal session was recorded in %s%s; its events:\n", id, hint)
		for _, ev := range evs {
			if _, err := fmt.Fprintln(a.io.Out, formatEvent(ev)); err != nil {
				return err
			}
		}
		return nil
	}
	procs := map[int]sessionEvent{}
	for _, ev := range evs {
		if ev.Event == "process" {
			procs[ev.Process] = ev
		}
	}
	play := asciicast.PlayOptions{Speed: opts.speed, IdleLimit: opts.idle, Sleep: opts.sleep}
	for i, cf := range casts {
		p := procs[cf.process]
		what := "login shell"
		if p.Command != "" {
			what = strconv.Quote(p.Command)
		}
		note := fmt.Sprintf("porthole: [%d/%d] process %d of %s on %s: %s", i+1, len(casts), cf.process, id, rec.Session.Device, what)
		if p.RunAs != "" {
			note += " as " + safe(p.RunAs)
		}
		if !p.Time.IsZero() {
			note += ", " + p.Time.Local().Format("2006-01-02 15:04:05")
		}
		if p.PTY {
			note += fmt.Sprintf(", %dx%d", p.Cols, p.Rows)
		}
		fmt.Fprintln(a.io.Err, note)
		data, err := c.RecordingFile(ctx, id, cf.name)
		if err != nil {
			return err
		}
		skipped, err := asciicast.Play(ctx, a.io.Out, bytes.NewReader(data), play)
		if errors.Is(err, asciicast.ErrNotCast) {
			fmt.Fprintf(a.io.Err, "porthole: %s is not an asciicast v2 recording; skipped\n", cf.name)
			continue
		} else if err != nil {
			return err
		}
		if skipped > 0 {
			fmt.Fprintf(a.io.Err, "porthole: skipped %d unreadable lines of %s\n", skipped, cf.name)
		}
	}
	return nil
}

// readEvents reads a session's events.jsonl from the server; lines that
// cannot be read (a partial last one) are left out.
func readEvents(ctx context.Context, c *apiclient.Client, id string) ([]sessionEvent, error) {
	data, err := c.RecordingFile(ctx, id, "events.jsonl")
	if err != nil {
		return nil, err
	}
	return parseEvents(data), nil
}

// parseEvents reads the events of an events.jsonl, leaving out lines that
// cannot be read.
func parseEvents(data []byte) []sessionEvent {
	var evs []sessionEvent
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev sessionEvent
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Event != "" {
			evs = append(evs, ev)
		}
	}
	return evs
}

// formatEvent writes an event of events.jsonl as one line. What comes from
// the device is shown safe: it must not drive the terminal.
func formatEvent(ev sessionEvent) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-12s ", ev.Time.Local().Format("2006-01-02 15:04:05"), safe(ev.Event))
	switch ev.Event {
	case "connected":
		b.WriteString(safe(ev.User))
	case "disconnected":
		b.WriteString(safe(cmp.Or(ev.Reason, "the engineer hung up")))
	case "process":
		fmt.Fprintf(&b, "#%d %s", ev.Process, cmp.Or(quoteIf(ev.Command), "login shell"))
		if ev.RunAs != "" {
			b.WriteString(" as " + safe(ev.RunAs))
		}
	case "exit":
		fmt.Fprintf(&b, "#%d ", ev.Process)
		switch {
		case ev.Signal != "":
			b.WriteString("killed by SIG" + safe(ev.Signal))
		case ev.Status != nil:
			fmt.Fprintf(&b, "status %d", *ev.Status)
		}
		fmt.Fprintf(&b, ", %d bytes in, %d out", ev.In, ev.Out)
	case "sftp":
		fmt.Fprintf(&b, "%s %s", safe(ev.Op), strconv.Quote(ev.Path))
		if ev.Target != "" {
			b.WriteString(" -> " + strconv.Quote(ev.Target))
		}
		if ev.Bytes > 0 {
			fmt.Fprintf(&b, " (%d bytes)", ev.Bytes)
		}
		if ev.Error != "" {
			b.WriteString(": failed, " + safe(ev.Error))
		}
	case "forward":
		b.WriteString(safe(ev.Target))
		if ev.Refused != "" {
			b.WriteString(": refused, " + safe(ev.Refused))
		} else {
			fmt.Fprintf(&b, ", %d bytes in, %d out", ev.In, ev.Out)
		}
	case "truncated":
		b.WriteString(safe(ev.What + ": " + ev.Detail))
	case "ended":
		b.WriteString(safe(ev.Reason))
	}
	return strings.TrimRight(b.String(), " ")
}

func quoteIf(s string) string {
	if s == "" {
		return ""
	}
	return strconv.Quote(s)
}
