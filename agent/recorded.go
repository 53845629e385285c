package agent

import (
	"context"

	"github.com/porthole/porthole/agent/agentrecord"
	"github.com/porthole/porthole/control"
)

// endingHandler is a SessionHandler that can also end a session on the
// device's own account, with the device's reason, as Tunnels can. End
// reports whether the session was open; it must be safe to call from any
// goroutine.
type endingHandler interface {
	SessionHandler
	End(session string, reason control.CloseReason) bool
}

// recordSessions wraps h so that the recordings learn why each session
// ended (its tunnel_down reason) and so that a session that cannot be
// recorded is ended through h as not_recorded: the device's reason, which
// the server records as such (a close on command would read as the
// engineer's).
func recordSessions(r *agentrecord.Recordings, h endingHandler) SessionHandler {
	rs := &recordedSessions{r: r, h: h}
	r.OnFail(func(session string) { h.End(session, control.CloseNotRecorded) })
	return rs
}

type recordedSessions struct {
	r *agentrecord.Recordings
	h endingHandler
}

func (rs *recordedSessions) wrap(report Reporter) Reporter {
	return func(s control.State) {
		if s.Kind == control.StateTunnelDown {
			rs.r.SessionEnded(s.Session, control.CloseReason(s.Reason))
		}
		report(s)
	}
}

func (rs *recordedSessions) Open(ctx context.Context, cmd *control.Command, report Reporter) {
	rs.h.Open(ctx, cmd, rs.wrap(report))
}

func (rs *recordedSessions) Close(ctx context.Context, cmd *control.Command, report Reporter) {
	rs.h.Close(ctx, cmd, rs.wrap(report))
}
