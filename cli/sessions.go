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

func newSessions(a *app) *cobra.Command {
	var fleet, device string
	var open bool
	bytes := map[string]string{} // session ID -> uploaded recording's size, for the table
	cmd := listing[apitype.Session]{
		fetch: func(ctx context.Context, c *apiclient.Client) ([]apitype.Session, error) {
			f := apiclient.SessionFilter{OpenOnly: open}
			var err error
			if f.Fleet, f.Device, err = deviceFilter(ctx, c, device, fleet); err != nil {
				return nil, err
			}
			ss, err := c.Sessions(ctx, f)
			if err == nil {
				recordingSizes(ctx, c, ss, bytes)
			}
			return ss, err
		},
		compare: func(x, y apitype.Session) int {
			if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
				return c // newest first
			}
			return strings.Compare(x.ID, y.ID)
		},
		none:    "no sessions",
		headers: []string{"ID", "DEVICE", "USER", "STATE", "STARTED", "DURATION", "CLOSE REASON", "BYTES"},
		row: func(s apitype.Session) []string {
			return []string{s.ID, s.Device + "." + s.Fleet, sessionUser(s), sessionState(s), formatTime(s.CreatedAt),
				sessionDuration(s, a.now()), orDash(s.CloseReason), orDash(bytes[s.ID])}
		},
	}.attach(a, &cobra.Command{
		Use:     "sessions [--fleet FLEET] [--device DEVICE] [--open]",
		Aliases: []string{"session"},
		Short:   "List sessions on your fleets' devices, newest first",
		Long: `List the sessions opened on the devices of your fleets, newest first (the
latest 100): who opened them, their state (requested, waiting_consent,
connecting, active, closed), when they started, how long they lasted or have
lasted, why they closed: engineer_closed, device_unreachable, idle_timeout,
max_duration, or the device's own reason, and how much of their recording the
device uploaded (BYTES; "+" while it is still sending, porthole replay plays
it).`,
		Example: "  porthole sessions --open\n  porthole sessions --device kitchen-amp.acme --json",
		Args:    cobra.NoArgs,
	})
	addFleetFlag(a, cmd, &fleet, false)
	cmd.Flags().StringVar(&device, "device", "", "only this device's sessions (DEVICE or DEVICE.FLEET)")
	cmd.Flags().BoolVar(&open, "open", false, "only sessions not closed yet")
	return cmd
}

// sessionUser is who opened a session, and who approved it in a fleet
// with the four-eyes rule.
func sessionUser(s apitype.Session) string {
	if s.ApprovedBy != "" {
		return safe(s.User) + " (approved by " + safe(s.ApprovedBy) + ")"
	}
	return safe(s.User)
}

// sessionState is a session's state, saying when it waits for a second
// engineer.
func sessionState(s apitype.Session) string {
	if s.FourEyes && s.State == apitype.SessionRequested {
		return "requested (waiting for a second engineer)"
	}
	return s.State
}

// sessionDuration is how long a session has been open: until it closed,
// or until now.
func sessionDuration(s apitype.Session, now time.Time) string {
	if s.CreatedAt.IsZero() {
		return "-"
	}
	end := now
	if !s.ClosedAt.IsZero() {
		end = s.ClosedAt
	}
	return humanize.Duration(end.Sub(s.CreatedAt))
}

func newClose(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "close SESSION...",
		Short: "Close sessions now (operators of the device's fleet)",
		Long: `Close sessions at once: the device is told to end them, and the relay cuts
their connections. SESSION is an ID as ` + "`porthole sessions`" + ` shows it.`,
		Example: "  porthole close s_8f3k2m",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.connect()
			if err != nil {
				return err
			}
			for _, id := range args {
				before, err := c.Session(cmd.Context(), id)
				if err != nil {
					return err
				}
				s, err := c.CloseSession(cmd.Context(), id)
				if err != nil {
					return err
				}
				if before.State == apitype.SessionClosed {
					fmt.Fprintf(a.io.Err, "session %s on %s was already closed (%s)\n", s.ID, s.Device, orDash(s.CloseReason))
					continue
				}
				fmt.Fprintf(a.io.Err, "closed session %s on %s, open for %s\n", s.ID, s.Device, sessionDuration(*s, a.now()))
			}
			return nil
		},
	}
}

// recordingSizes fills sizes with the uploaded recordings' sizes of ss, for
// the table: "12.5 KiB", with "+" while the device is still sending. A
// server that cannot say leaves the column empty.
func recordingSizes(ctx context.Context, c *apiclient.Client, ss []apitype.Session, sizes map[string]string) {
	ids := make([]string, 0, len(ss))
	for _, s := range ss {
		ids = append(ids, s.ID)
	}
	for len(ids) > 0 {
		batch := ids[:min(len(ids), 100)]
		ids = ids[len(batch):]
		recs, err := c.Recordings(ctx, apiclient.RecordingFilter{Sessions: batch})
		if err != nil {
			return
		}
		for _, r := range recs {
			v := formatBytes(r.Bytes)
			if !r.Complete {
				v += "+"
			}
			sizes[r.Session.ID] = v
		}
	}
}
