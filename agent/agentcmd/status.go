package agentcmd

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/porthole/porthole/agent/agentconsent"
	"github.com/porthole/porthole/agent/agentowner"
	"github.com/porthole/porthole/humanize"
)

var modeWords = map[agentconsent.Mode]string{
	agentconsent.Manual:  "manual (engineers need a support window and its code)",
	agentconsent.Approve: "approve (you approve each session)",
	agentconsent.Auto:    "auto (any session the server signs)",
}

func newStatus(stdio IO) *Command {
	var o ownerFlags
	var stateDir *string
	cmd := &Command{
		Use:   "status [--json]",
		Short: "Show the support window, who asks to connect, and who is connected",
		Long: `status asks the running agent how things stand: the consent mode, the open
support window and its code, the sessions waiting for your approval (who asks,
from which fleet, and why), and the sessions open now with the engineer
connected to each. It ends with your read-only owner link to the server's
record of this device (see porthole-agent owner-link), read from --state.`,
	}
	cmd.Run = func(ctx context.Context, _ []string) error {
		c, err := o.client(cmd)
		if err != nil {
			return err
		}
		st, err := c.Status(ctx)
		if err != nil {
			return err
		}
		if o.json {
			return printJSON(stdio.Out, st)
		}
		printStatus(stdio, st, time.Now())
		printStatusOwnerLink(stdio.Out, *stateDir, time.Now())
		return nil
	}
	o.register(cmd, true)
	stateDir = ownerLinkStateFlag(cmd)
	return cmd
}

func printStatus(stdio IO, st *agentowner.Status, now time.Time) {
	out := stdio.Out
	fmt.Fprintf(out, "%s (fleet %s), consent: %s\n", st.Device, st.Fleet, modeWords[st.Mode])
	if w := st.Window; w != nil {
		line := fmt.Sprintf("Support window: open until %s (%s left)", ownerClock(w.Ends, now), timeLeft(w.Ends, now))
		if w.Code != "" {
			line += ", code " + w.Code
		}
		if w.WrongCodes > 0 {
			line += fmt.Sprintf(", %d wrong code(s) tried", w.WrongCodes)
		}
		fmt.Fprintln(out, line)
		if w.Reason != "" {
			fmt.Fprintf(out, "  your reason: %s\n", w.Reason)
		}
		switch {
		case w.RequestID != "":
			fmt.Fprintf(out, "  the support team has your request (%s)\n", w.RequestID)
		case w.ServerError != "":
			fmt.Fprintf(out, "  the support team could not be told yet: %s\n", w.ServerError)
		}
	} else if st.Mode == agentconsent.Manual {
		fmt.Fprintln(out, "Support window: closed (porthole-agent request opens one)")
	}
	if len(st.Pending) > 0 {
		fmt.Fprintln(out, "Waiting for your answer:")
		for _, a := range st.Pending {
			who := a.User
			if who == "" {
				who = "an engineer"
			}
			reason := "no reason given"
			if a.Reason != "" {
				reason = fmt.Sprintf("%q", a.Reason)
			}
			fmt.Fprintf(out, "  %s  %s of fleet %s asks: %s; denied by itself in %s\n", a.Session, who, a.Fleet, reason, timeLeft(a.Deadline, now))
			if a.ServerError != "" {
				fmt.Fprintf(out, "      (the server could not say who asks: %s)\n", a.ServerError)
			}
			fmt.Fprintf(out, "      porthole-agent approve %s   or   porthole-agent deny %s\n", a.Session, a.Session)
		}
	}
	var open []agentconsent.SessionStatus
	for _, s := range st.Sessions {
		if s.State != agentconsent.SessionWaitingOwner {
			open = append(open, s)
		}
	}
	if len(open) == 0 {
		fmt.Fprintln(out, "Sessions: none")
	} else {
		fmt.Fprintln(out, "Sessions:")
		for _, s := range open {
			var what string
			switch {
			case s.User != "" && s.Connections > 0:
				what = fmt.Sprintf("%s connected since %s", s.User, ownerClock(s.ConnectedSince, now))
				if s.Connections > 1 {
					what += fmt.Sprintf(" (%d connections)", s.Connections)
				}
			case s.State == agentconsent.SessionOpen:
				what = "open since " + ownerClock(s.Since, now) + ", no engineer connected right now"
			default:
				what = "connecting"
			}
			fmt.Fprintf(out, "  %s  %s\n", s.ID, what)
		}
		fmt.Fprintln(out, "  (porthole-agent revoke ends them all at once)")
	}
	if st.Page != "" {
		fmt.Fprintf(out, "Local page: %s (opens it in one browser, within %s)\n", strings.TrimSpace(st.Page), humanize.Duration(agentowner.PageLinkTTL))
	}
}
