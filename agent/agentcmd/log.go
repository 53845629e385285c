package agentcmd

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/agent/agentrecord"
	"github.com/porthole/porthole/agent/agentstate"
)

func newLog(stdio IO) *Command {
	var stateDir, since string
	var asJSON bool
	cmd := &Command{
		Use:   "log [--since T] [--json] [--state DIR]",
		Short: "Show the agent's own log: commands, sessions, who connected",
		Long: `log shows the agent's own record of what it was asked and what happened
(` + agentlog.File + ` in the state directory), oldest first: commands from the
server it accepted or refused, engineers connecting and leaving, sessions
ending and why, and recordings cut short or deleted. Each line was written
to disk before the agent acted on it.

It reads the state directory itself: the agent need not be running. Run it
as root, or as a member of the ` + agentstate.OwnerGroup + ` group.

--since keeps what happened since a moment: a length of time back (2h, 3d)
or a date and time (2026-11-22, "2026-11-22 14:00", RFC 3339). --json prints
the log's own lines, one JSON object each.`,
		Example: `  porthole-agent log
  porthole-agent log --since 1d
  porthole-agent log --json | jq 'select(.event == "engineer_connected")'`,
	}
	cmd.Run = func(context.Context, []string) error {
		from, err := parseSince(since, time.Now())
		if err != nil {
			return err
		}
		entries, skipped, err := agentlog.Read(stateDir, from)
		if err != nil {
			return err
		}
		if skipped > 0 {
			fmt.Fprintf(stdio.Err, "porthole-agent: skipped %d unreadable lines of %s\n", skipped, agentlog.File)
		}
		if asJSON {
			for _, e := range entries {
				if _, err := fmt.Fprintf(stdio.Out, "%s\n", e.Raw); err != nil {
					return err
				}
			}
			return nil
		}
		if len(entries) == 0 {
			fmt.Fprintln(stdio.Err, "nothing logged")
			return nil
		}
		for _, e := range entries {
			if _, err := fmt.Fprintln(stdio.Out, formatLogEntry(e)); err != nil {
				return err
			}
		}
		return nil
	}
	stateFlag(cmd, &stateDir)
	f := cmd.Flags
	f.StringVar(&since, "since", "", "only what happened since then: 2h, 3d, 2026-11-22, \"2026-11-22 14:00\"")
	f.BoolVar(&asJSON, "json", false, "print the log's lines as they are, one JSON object each")
	return cmd
}

// stateFlag gives cmd --state.
func stateFlag(cmd *Command, dir *string) {
	cmd.flags().StringVar(dir, "state", agentstate.DefaultDir, "the agent's state directory")
}

// logTimeLayout is how the log's lines show their moment, in the local
// zone.
const logTimeLayout = "2006-01-02 15:04:05"

// logFieldOrder puts the fields people look for first; the rest follow in
// alphabetical order.
var logFieldOrder = []string{"session", "user", "type", "reason", "detail", "bytes", "size"}

// formatLogEntry writes one log line for a person:
// "2026-11-22 14:03:07  engineer_connected  session=ses_1 user=ann@example.com".
func formatLogEntry(e agentlog.Entry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-22s", e.Time.Local().Format(logTimeLayout), e.Event)
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		if i := slices.Index(logFieldOrder, k); i >= 0 {
			return i
		}
		return len(logFieldOrder)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, logValue(k, e.Fields[k]))
	}
	return strings.TrimRight(b.String(), " ")
}

// logValue writes a field's value: sizes in bytes readable, text quoted
// when it has spaces.
func logValue(key string, v any) string {
	switch v := v.(type) {
	case string:
		if v == "" || strings.ContainsAny(v, " \t\n\"=") {
			return strconv.Quote(v)
		}
		return v
	case float64:
		if key == "bytes" {
			return agentrecord.ByteSize(v).String()
		}
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatInt(int64(v), 10)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

// parseSince reads --since: nothing (everything), a length of time back
// from now, or a moment.
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if a, err := agentrecord.ParseAge(s); err == nil {
		return now.Add(-time.Duration(a)), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: give a length of time back (2h, 3d) or a moment (2026-11-22, \"2026-11-22 14:00\")", s)
}
