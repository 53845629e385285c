package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/humanize"
)

func newRequests(a *app) *cobra.Command {
	var fleet, device string
	var all bool
	cmd := listing[apitype.SupportRequest]{
		fetch: func(ctx context.Context, c *apiclient.Client) ([]apitype.SupportRequest, error) {
			f := apiclient.RequestFilter{All: all}
			var err error
			if f.Fleet, f.Device, err = deviceFilter(ctx, c, device, fleet); err != nil {
				return nil, err
			}
			return c.Requests(ctx, f)
		},
		compare: func(x, y apitype.SupportRequest) int {
			if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
				return c // newest first
			}
			return strings.Compare(x.ID, y.ID)
		},
		none:    "no support requests",
		headers: []string{"ID", "DEVICE", "KIND", "STATE", "ASKED", "LEFT", "REASON", "SESSIONS"},
		row: func(r apitype.SupportRequest) []string {
			return []string{r.ID, r.Device + "." + r.Fleet, requestKind(r), requestState(r), formatTime(r.CreatedAt),
				requestLeft(r, a.now()), safe(orDash(r.Reason)), orDash(strings.Join(r.Sessions, ","))}
		},
	}.attach(a, &cobra.Command{
		Use:     "requests [--fleet FLEET] [--device DEVICE] [--all]",
		Aliases: []string{"request", "queue"},
		Short:   "The support queue: devices whose owners asked for help, sessions waiting for an owner or a second engineer",
		Long: `List the support queue of your fleets, newest first: devices whose owners
asked for help (porthole-agent request), with their reason and how long their
support window stays open, sessions waiting for an owner to approve them, and
sessions waiting for a second engineer (four-eyes, where the fleet's policy
asks for it). Closed and expired requests are left out unless --all is given.

Take a request with "porthole requests claim ID" so other engineers know you
are on it, then reach the device with "porthole ssh DEVICE --code CODE" using
the support code its owner reads to you (the server never knows it), and
close the request with "porthole requests close ID" when you are done.

A four-eyes request is another engineer's session: "porthole requests approve
ID" lets it go to its device (never your own), "porthole requests deny ID"
refuses it.`,
		Example: "  porthole requests\n  porthole requests claim req_k3m9q2x7p4t8w6za\n  porthole requests approve req_q2x7p4t8w6zak3m9\n  porthole requests --all --json",
		Args:    cobra.NoArgs,
	})
	addFleetFlag(a, cmd, &fleet, false)
	cmd.Flags().StringVar(&device, "device", "", "only this device's requests (DEVICE or DEVICE.FLEET)")
	cmd.Flags().BoolVar(&all, "all", false, "closed and expired requests too")
	cmd.AddCommand(newRequestAction(a, "claim"), newRequestAction(a, "close"), newRequestAction(a, "approve"), newRequestAction(a, "deny"))
	return cmd
}

// newRequestAction is `porthole requests claim|close|approve|deny ID...`.
func newRequestAction(a *app, verb string) *cobra.Command {
	short := map[string]string{
		"claim":   "Take support requests, so other engineers know you are on them",
		"close":   "Close support requests you are done with",
		"approve": "Approve, as a second engineer, the sessions four-eyes requests hold (never your own)",
		"deny":    "Refuse the sessions four-eyes requests hold",
	}[verb]
	return &cobra.Command{
		Use:   verb + " ID...",
		Short: short + " (operators of the device's fleet)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			for _, id := range args {
				var r *apitype.SupportRequest
				switch verb {
				case "claim":
					r, err = c.ClaimRequest(cmd.Context(), id)
				case "close":
					r, err = c.CloseRequest(cmd.Context(), id)
				case "approve":
					r, err = c.ApproveRequest(cmd.Context(), id)
					if apiclient.IsCode(err, apitype.CodeReauthRequired) {
						// The fleet asks its approvers too for a fresh
						// code: ask for it on the terminal, then once more.
						if err = a.reauthAndRetry(cmd.Context(), c, err, true, "approve"); err == nil {
							r, err = c.ApproveRequest(cmd.Context(), id)
						}
					}
				case "deny":
					r, err = c.DenyRequest(cmd.Context(), id)
				}
				if err != nil {
					return err
				}
				switch {
				case verb == "approve":
					fmt.Fprintf(a.io.Err, "approved %s: %s's session %s on %s.%s goes to the device now, with both your names\n",
						r.ID, safe(r.RequestedBy), r.Session, r.Device, r.Fleet)
				case r.Kind == apitype.RequestFourEyes && r.CloseReason == "denied":
					fmt.Fprintf(a.io.Err, "denied %s: %s's session %s on %s.%s is closed\n", r.ID, safe(r.RequestedBy), r.Session, r.Device, r.Fleet)
				case verb == "claim":
					fmt.Fprintf(a.io.Err, "claimed %s: %s asked for help%s; its window closes in %s\n", r.ID, r.Device,
						quotedReason(r.Reason), humanize.Duration(r.ExpiresAt.Sub(a.now()).Round(time.Second)))
					if r.Kind == apitype.RequestSupport {
						fmt.Fprintf(a.io.Err, "ask its owner for the support code, then: porthole ssh %s.%s --code CODE\n", r.Device, r.Fleet)
					}
				case r.CloseReason == "closed" && r.ClosedBy != "device":
					fmt.Fprintf(a.io.Err, "closed %s (%s)\n", r.ID, r.Device)
				default:
					fmt.Fprintf(a.io.Err, "%s was already closed (%s)\n", r.ID, strings.ReplaceAll(r.CloseReason, "_", " "))
				}
			}
			return nil
		},
	}
}

func quotedReason(s string) string {
	if s == "" {
		return ""
	}
	return " (" + safe(s) + ")"
}

// requestKind says who asks whom.
func requestKind(r apitype.SupportRequest) string {
	switch r.Kind {
	case apitype.RequestApproval:
		return "approval (" + safe(orDash(r.RequestedBy)) + ")"
	case apitype.RequestFourEyes:
		return "four-eyes (" + safe(orDash(r.RequestedBy)) + ")"
	}
	return "support"
}

// requestState is the state, with who claimed it or why it closed.
func requestState(r apitype.SupportRequest) string {
	switch {
	case r.State == apitype.RequestClaimed:
		return "claimed by " + safe(r.ClaimedBy)
	case r.State == apitype.RequestClosed && r.CloseReason != "":
		return "closed (" + safe(r.CloseReason) + ")"
	}
	return r.State
}

// requestLeft is how long an open request has left.
func requestLeft(r apitype.SupportRequest, now time.Time) string {
	if r.State == apitype.RequestClosed || !r.ExpiresAt.After(now) {
		return "-"
	}
	return humanize.Duration(r.ExpiresAt.Sub(now).Round(time.Second))
}

// approvalCountdown shows "waiting for the owner of DEVICE to approve (4:32
// left)" while a session waits for its owner, the time left read from the
// session's approval request (which the device files as it starts to
// wait). stop ends it.
func (l *link) approvalCountdown(ctx context.Context, session string) (stop func()) {
	return l.countdown(ctx, "waiting for the owner of "+l.device.Name+" to approve", func(ctx context.Context) time.Time {
		rs, err := l.c.Requests(ctx, apiclient.RequestFilter{Session: session})
		if err != nil {
			return time.Time{}
		}
		for _, r := range rs {
			if r.Kind == apitype.RequestApproval {
				return r.ExpiresAt
			}
		}
		return time.Time{}
	})
}

// countdown shows msg with the time left until the deadline find reads
// ("… (4:32 left)"; zero: not known yet, tried again for ten seconds). On
// a terminal the line counts down; elsewhere it is printed once, and once
// more when the time left is known. stop ends it.
func (l *link) countdown(ctx context.Context, msg string, find func(context.Context) time.Time) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	words := func(deadline time.Time) string {
		if deadline.IsZero() {
			return msg + "…"
		}
		d := max(deadline.Sub(l.a.now()).Round(time.Second), 0)
		return fmt.Sprintf("%s (%d:%02d left)", msg, int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	deadline := find(ctx)
	l.progress.set(words(deadline))
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for tries := 0; ; tries++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if deadline.IsZero() && tries < 10 {
				if deadline = find(ctx); !deadline.IsZero() {
					l.progress.set(words(deadline))
				}
			} else if !deadline.IsZero() {
				l.progress.relabel(words(deadline))
			}
		}
	}()
	return func() { cancel(); <-done }
}

// waitSecondEngineer follows a session of a four-eyes fleet while it waits
// for a second engineer: it says what a colleague runs to approve it,
// counts down the time left, and returns once the session goes to its
// device (connecting), or in words once it closed (refused, or no answer
// in time).
func (l *link) waitSecondEngineer(ctx context.Context) error {
	id, fleet := l.opened.FourEyesRequest, l.session.Fleet
	l.progress.clear()
	fmt.Fprintf(l.a.io.Err, "fleet %s needs a second engineer to approve this session (four-eyes): ask an operator or owner of %s to run\n  porthole requests approve %s\n",
		fleet, fleet, id)
	stop := l.countdown(ctx, "waiting for a second engineer of "+fleet+" to approve", func(ctx context.Context) time.Time {
		if r, err := l.c.Request(ctx, id); err == nil {
			return r.ExpiresAt
		}
		return time.Time{}
	})
	defer stop()
	for {
		s, err := l.c.WaitSession(ctx, l.session.ID, apitype.SessionConnecting, pollWait)
		if err != nil {
			return err
		}
		l.session = *s
		switch s.State {
		case apitype.SessionRequested:
			continue
		case apitype.SessionClosed:
			return &userError{msg: sessionEndWords(*s, l.device.Name)}
		}
		if s.ApprovedBy != "" {
			l.progress.clear()
			fmt.Fprintf(l.a.io.Err, "%s approved the session\n", safe(s.ApprovedBy))
		}
		return nil
	}
}

// relabel changes the line a terminal shows without restarting its clock,
// for a line that counts down; elsewhere it does nothing, so logs get no
// line a second. A cleared line stays cleared.
func (p *progress) relabel(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.msg != "" {
		p.msg = msg
	}
}
