package agent

import (
	"context"
	"log/slog"

	"github.com/porthole/porthole/control"
)

// SessionHandler carries out the sessions that verified commands ask for.
// Run calls it for one command at a time, from one goroutine, so its
// methods must return quickly and do any long work (dialing the relay) on
// goroutines of their own. They report what became of a session with
// report: tunnel_up once the relay forward is ready, tunnel_down <reason>
// when it ends or cannot start. report may be called from any goroutine
// until ctx ends.
type SessionHandler interface {
	Open(ctx context.Context, cmd *control.Command, report Reporter)
	Close(ctx context.Context, cmd *control.Command, report Reporter)
}

// Reporter publishes a state message on the device's state topic. A message
// that cannot be sent (the broker is away) is logged and dropped, but for a
// session's end (tunnel_down), which is sent again once the broker is back.
type Reporter func(control.State)

// ReasonUnsupported ends a session this agent cannot hold.
const ReasonUnsupported = "unsupported"

// NoSessions is the SessionHandler of an agent without a data path (it
// arrives with its own issue): it answers every open and close with
// "tunnel_down <session> unsupported" at once, so the server closes the
// session rather than wait for a tunnel that will never come up.
type NoSessions struct {
	// Logger gets a line per command. Nil: nothing is logged.
	Logger *slog.Logger
}

var _ SessionHandler = NoSessions{}

// Open implements SessionHandler.
func (n NoSessions) Open(_ context.Context, cmd *control.Command, report Reporter) {
	n.refuse(cmd, report)
}

// Close implements SessionHandler.
func (n NoSessions) Close(_ context.Context, cmd *control.Command, report Reporter) {
	n.refuse(cmd, report)
}

func (n NoSessions) refuse(cmd *control.Command, report Reporter) {
	if n.Logger != nil {
		n.Logger.Info("sessions are not supported by this agent yet", "type", cmd.Type, "session", cmd.Session)
	}
	report(control.State{Kind: control.StateTunnelDown, Session: cmd.Session, Reason: ReasonUnsupported})
}
