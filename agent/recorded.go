package agent

import (
	"context"
	"sync"

	"github.com/porthole/porthole/agent/agentrecord"
	"github.com/porthole/porthole/control"
)

// recordSessions wraps h so that the recordings learn why each session
// ended (its tunnel_down reason) and so that a session that cannot be
// recorded is closed through h. h's Close must be safe to call from any
// goroutine, as Tunnels' is.
func recordSessions(r *agentrecord.Recordings, h SessionHandler) SessionHandler {
	rs := &recordedSessions{r: r, h: h, open: map[string]recordedSession{}}
	r.OnFail(rs.fail)
	return rs
}

type recordedSessions struct {
	r *agentrecord.Recordings
	h SessionHandler

	mu   sync.Mutex
	open map[string]recordedSession // guarded by mu
}

type recordedSession struct {
	ctx    context.Context
	report Reporter
}

func (rs *recordedSessions) wrap(report Reporter) Reporter {
	return func(s control.State) {
		if s.Kind == control.StateTunnelDown {
			rs.mu.Lock()
			delete(rs.open, s.Session)
			rs.mu.Unlock()
			rs.r.SessionEnded(s.Session, control.CloseReason(s.Reason))
		}
		report(s)
	}
}

func (rs *recordedSessions) Open(ctx context.Context, cmd *control.Command, report Reporter) {
	report = rs.wrap(report)
	rs.mu.Lock()
	rs.open[cmd.Session] = recordedSession{ctx, report}
	rs.mu.Unlock()
	rs.h.Open(ctx, cmd, report)
}

func (rs *recordedSessions) Close(ctx context.Context, cmd *control.Command, report Reporter) {
	rs.h.Close(ctx, cmd, rs.wrap(report))
}

// sessionEnder is a SessionHandler that can end a session on the device's
// own account, with the device's reason (Tunnels).
type sessionEnder interface {
	End(session string, reason control.CloseReason) bool
}

// fail ends a session the recorder cannot record, as not_recorded: the
// device's reason, which the server records as such (a close on command
// would read as the engineer's).
func (rs *recordedSessions) fail(session string) {
	rs.mu.Lock()
	o, ok := rs.open[session]
	rs.mu.Unlock()
	if !ok {
		return
	}
	if e, can := rs.h.(sessionEnder); can && e.End(session, control.CloseNotRecorded) {
		return
	}
	rs.h.Close(o.ctx, &control.Command{V: 1, Type: control.TypeClose, Session: session}, o.report)
}
