package agent

import (
	"context"

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
