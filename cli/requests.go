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
		Short:   "The support queue: devices whose owners asked for help, and sessions waiting for an owner",
		Long: `List the support queue of your fleets, newest first: devices whose owners
asked for help (porthole-agent request), with their reason and how long their
support window stays open, and sessions waiting for an owner to approve them.
Closed and expired requests are left out unless --all is given.

Take a request with "porthole requests claim ID" so other engineers know you
are on it, then reach the device with "porthole ssh DEVICE --code CODE" using
the support code its owner reads to you (the server never knows it), and
close the request with "porthole requests close ID" when you are done.`,
		Example: "  porthole requests\n  porthole requests claim req_k3m9q2x7p4t8w6za\n  porthole requests --all --json",
		Args:    cobra.NoArgs,
	})
	addFleetFlag(a, cmd, &fleet, false)
	cmd.Flags().StringVar(&device, "device", "", "only this device's requests (DEVICE or DEVICE.FLEET)")
	cmd.Flags().BoolVar(&all, "all", false, "closed and expired requests too")
	cmd.AddCommand(newRequestAction(a, "claim"), newRequestAction(a, "close"))
	return cmd
}

// newRequestAction is `porthole requests claim|close ID...`.
func newRequestAction(a *app, verb string) *cobra.Command {
	short := "Take support requests, so other engineers know you are on them"
	if verb == "close" {
		short = "Close support requests you are done with"
	}
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
				if verb == "claim" {
					r, err = c.ClaimRequest(cmd.Context(), id)
				} else {
					r, err = c.CloseRequest(cmd.Context(), id)
				}
				if err != nil {
					return err
				}
				switch {
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
	if r.Kind == apitype.RequestApproval {
		return "approval (" + safe(orDash(r.RequestedBy)) + ")"
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
// wait). On a terminal the line counts down; elsewhere it is printed once,
// and once more when the time left is known. stop ends it.
func (l *link) approvalCountdown(ctx context.Context, session string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	words := func(deadline time.Time) string {
		msg := "waiting for the owner of " + l.device.Name + " to approve"
		if deadline.IsZero() {
			return msg + "…"
		}
		d := max(deadline.Sub(l.a.now()).Round(time.Second), 0)
		return fmt.Sprintf("%s (%d:%02d left)", msg, int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	var deadline time.Time
	find := func() {
		rs, err := l.c.Requests(ctx, apiclient.RequestFilter{Session: session})
		if err == nil && len(rs) == 1 {
			deadline = rs[0].ExpiresAt
		}
	}
	find()
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
				if find(); !deadline.IsZero() {
					l.progress.set(words(deadline))
				}
			} else if !deadline.IsZero() {
				l.progress.relabel(words(deadline))
			}
		}
	}()
	return func() { cancel(); <-done }
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
