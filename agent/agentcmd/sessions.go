package agentcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/porthole/porthole/agent/agentrecord"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/humanize"
)

func newSessions(stdio IO) *Command {
	var stateDir string
	var asJSON bool
	cmd := &Command{
		Use:     "sessions [--json] [--state DIR]",
		Aliases: []string{"session"},
		Short:   "List the recorded support sessions, newest first",
		Long: `sessions lists the support sessions recorded on this device, newest first:
the session's id, who came (as their certificates say), when it started, how
long it lasted, why it ended (closed, idle_timeout, max_duration, revoked,
agent_stopping, interrupted, ...), what its recording takes on disk, and
whether the recording is complete or was cut short at one of the caps
(recordings.max_session, max_events, max_total in the agent's config).

"porthole-agent replay ID" plays one back. The recordings are in the state
directory's ` + agentrecord.SessionsDir + ` folder; this command reads them itself, so the agent
need not be running. Run it as root, or as a member of the ` + agentstate.OwnerGroup + ` group.`,
		Example: `  porthole-agent sessions
  porthole-agent sessions --json`,
	}
	cmd.Run = func(context.Context, []string) error {
		all, err := agentrecord.ListSessions(stateDir)
		if err != nil {
			return err
		}
		slices.Reverse(all) // newest first
		if asJSON {
			if all == nil {
				all = []agentrecord.SessionInfo{}
			}
			enc := json.NewEncoder(stdio.Out)
			enc.SetIndent("", "  ")
			return enc.Encode(all)
		}
		if len(all) == 0 {
			fmt.Fprintln(stdio.Err, "no sessions recorded")
			return nil
		}
		now := time.Now()
		tw := tabwriter.NewWriter(stdio.Out, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "SESSION\tENGINEER\tSTARTED\tDURATION\tENDED\tBYTES\tRECORDING")
		for _, s := range all {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\t%s\n", s.Session, orDash(engineers(s)), startedAt(s),
				duration(s, now), orDash(endReason(s)), agentrecord.ByteSize(s.Bytes), recordingState(s))
		}
		return tw.Flush()
	}
	stateFlag(cmd, &stateDir)
	cmd.Flags.BoolVar(&asJSON, "json", false, "print a JSON array instead of a table")
	return cmd
}

// engineers are the session's engineers, each once.
func engineers(s agentrecord.SessionInfo) string {
	var users []string
	for _, w := range s.Who {
		if !slices.Contains(users, w.User) {
			users = append(users, w.User)
		}
	}
	return strings.Join(users, ",")
}

func startedAt(s agentrecord.SessionInfo) string {
	if s.Start.IsZero() {
		return "-"
	}
	return s.Start.Local().Format("2006-01-02 15:04")
}

func duration(s agentrecord.SessionInfo, now time.Time) string {
	if s.Start.IsZero() {
		return "-"
	}
	return humanize.Duration(s.Duration(now))
}

func endReason(s agentrecord.SessionInfo) string {
	if s.Problem != "" {
		return ""
	}
	if s.Open() {
		return "(open)"
	}
	return s.Reason
}

// recordingState says whether the recording holds everything.
func recordingState(s agentrecord.SessionInfo) string {
	switch {
	case s.Problem != "":
		return "unreadable: " + s.Problem
	case len(s.Truncated) > 0:
		return "truncated (" + strings.Join(s.Truncated, ", ") + ")"
	case s.Open():
		return "recording"
	}
	return "complete"
}

// orDash is s, or "-" for an empty table cell.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
