package agentcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/porthole/porthole/agent"
	"github.com/porthole/porthole/agent/agentconsent"
	"github.com/porthole/porthole/agent/agentowner"
)

// ownerFlags are the flags of the owner's commands, which talk to the
// running agent over its socket.
type ownerFlags struct {
	socket, config string
	json           bool
}

func (o *ownerFlags) register(cmd *Command, withJSON bool) {
	f := cmd.flags()
	f.StringVar(&o.socket, "socket", "", "the running agent's socket (default: socket: in the config, else "+agentowner.DefaultSocket+")")
	f.StringVar(&o.config, "config", agent.DefaultConfigFile, "the owner's config file, for its socket:")
	if withJSON {
		f.BoolVar(&o.json, "json", false, "print the answer as JSON")
	}
}

// client finds the socket: --socket, else the config's, else the default.
func (o *ownerFlags) client(cmd *Command) (*agentowner.Client, error) {
	if o.socket != "" {
		return agentowner.NewClient(o.socket), nil
	}
	cfg, err := loadConfig(o.config, cmd.changed("config"))
	if err != nil {
		return nil, err
	}
	return agentowner.NewClient(cfg.Owner.SocketPath()), nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// clock is how times are shown to the owner: local time of day, with the
// date when it is not today.
func ownerClock(t, now time.Time) string {
	t, now = t.Local(), now.Local()
	if y, m, d := t.Date(); y == now.Year() && m == now.Month() && d == now.Day() {
		return t.Format("15:04")
	}
	return t.Format("Jan 2 15:04")
}

// left is how long until t, as m:ss or h:mm:ss.
func timeLeft(t, now time.Time) string {
	d := max(t.Sub(now).Round(time.Second), 0)
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}

func newRequest(stdio IO) *Command {
	var (
		o      ownerFlags
		reason string
		dur    time.Duration
	)
	cmd := &Command{
		Use:   "request [--reason TEXT] [--for DURATION]",
		Short: "Ask for support: open a support window and print its code",
		Long: `request asks the running agent to open a support window and prints the
support code to read to the support engineer (in manual consent, the
default). Engineers get in only while the window is open, and only with that
code; five wrong codes close it. The support team sees your request and its
reason in their queue, never the code.

Asking again while a window is open prints the same window's code. The window
closes by itself after --for (default 1h, at most 24h); porthole-agent revoke
closes it at once and ends every session.

In approve consent no code is needed (you approve each session with
porthole-agent approve); in auto consent engineers get in without you. In
both, request still puts your request in the support team's queue.`,
		Example: `  porthole-agent request --reason "the amplifier hums on channel 2"
  porthole-agent request --for 4h`,
	}
	cmd.Run = func(ctx context.Context, _ []string) error {
		c, err := o.client(cmd)
		if err != nil {
			return err
		}
		a, err := c.Request(ctx, reason, dur)
		if err != nil {
			return err
		}
		if o.json {
			return printJSON(stdio.Out, a)
		}
		w, now := a.Window, time.Now()
		if !a.Opened {
			fmt.Fprintf(stdio.Err, "A support window is already open, until %s (%s left).\n", ownerClock(w.Ends, now), timeLeft(w.Ends, now))
		}
		if w.Code != "" {
			fmt.Fprintf(stdio.Err, "Support code for %s (read it to the support engineer):\n", a.Device)
			fmt.Fprintln(stdio.Out, w.Code)
			if a.Opened {
				fmt.Fprintf(stdio.Err, "The window is open until %s. Five wrong codes close it; porthole-agent revoke closes it at once.\n", ownerClock(w.Ends, now))
			}
		} else if a.Mode == agentconsent.Approve {
			fmt.Fprintln(stdio.Err, "No code is needed: you approve each engineer's session (porthole-agent status shows who asks; porthole-agent approve lets them in).")
		} else {
			fmt.Fprintln(stdio.Err, "No code is needed: this device lets in any session its server signs (consent: auto).")
		}
		switch {
		case w.RequestID != "":
			fmt.Fprintf(stdio.Err, "The support team has your request (%s).\n", w.RequestID)
		case w.ServerError != "":
			fmt.Fprintf(stdio.Err, "The support team could not be told yet (%s); the agent keeps trying.\n", w.ServerError)
		}
		return nil
	}
	o.register(cmd, true)
	cmd.Flags.StringVar(&reason, "reason", "", "what is wrong, for the support team")
	cmd.Flags.DurationVar(&dur, "for", agentconsent.DefaultSupportWindow, "how long the window stays open (at most 24h)")
	return cmd
}
