package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/eclipse/paho.golang/autopaho"

	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/control"
)

// Events of the control channel in the event log.
const (
	eventCommandAccepted = "command_accepted"
	eventCommandRejected = "command_rejected"
)

// work handles received commands one at a time until ctx ends.
func (r *runner) work(ctx context.Context, cm *autopaho.ConnectionManager) {
	report := r.reporter(ctx, cm)
	for {
		select {
		case <-ctx.Done():
			return
		case payload := <-r.inbox:
			r.handle(ctx, payload, report)
		}
	}
}

// handle verifies one message from the cmd topic and acts on it: a
// rejected command is logged, recorded and answered "rejected <reason>"; an
// accepted one is recorded, then handed to the SessionHandler.
func (r *runner) handle(ctx context.Context, payload []byte, report Reporter) {
	cmd, err := r.verifier.Verify(payload, r.serverNow())
	if timeRejected(err) && r.syncClock(ctx) {
		// The device's clock was off; it has the server's time now.
		cmd, err = r.verifier.Verify(payload, r.serverNow())
	}
	if err != nil {
		reason, detail := control.RejectReason(err), ""
		if re, ok := errors.AsType[*control.RejectError](err); ok && re.Err != nil {
			detail = re.Err.Error()
		}
		if timeRejected(err) {
			detail += fmt.Sprintf("; this device's clock reads %s: if that is wrong, set it right (NTP)", r.now().UTC().Format(time.RFC3339))
		}
		r.log.Warn("command rejected", "reason", reason, "detail", detail, "size", len(payload))
		r.record(agentlog.Event{Event: eventCommandRejected, Reason: reason, Detail: detail, Size: len(payload)})
		report(control.State{Kind: control.StateRejected, Reason: reason})
		return
	}
	if !r.record(agentlog.Event{Event: eventCommandAccepted, Type: cmd.Type, Session: cmd.Session}) {
		report(control.TunnelDown(cmd.Session, control.CloseNotRecorded))
		return
	}
	r.log.Info("command accepted", "type", cmd.Type, "session", cmd.Session)
	switch cmd.Type {
	case control.TypeOpen:
		r.sessions.Open(ctx, cmd, report)
	case control.TypeClose:
		r.sessions.Close(ctx, cmd, report)
	}
}

// timeRejected: Verify refused a command for its time, which a device
// clock minutes off would do to every command.
func timeRejected(err error) bool {
	reason := control.RejectReason(err)
	return reason == control.ReasonExpired || reason == control.ReasonTooFarAhead
}

// record writes ev to the event log and reports whether it is on disk.
func (r *runner) record(ev agentlog.Event) bool {
	ev.Time = r.now().UTC()
	if err := r.events.Write(ev); err != nil {
		r.log.Error("the event log cannot be written", "event", ev.Event, "err", err)
		return false
	}
	return true
}

// reporter publishes state messages through cm for as long as ctx lasts.
// A session's end that cannot be published is kept and sent again on the
// next connection (sendUnreported): a session often ends because its
// relay connection dropped, and so did the MQTT connection, with the same
// server (it was restarted, or killed) or the same network; a server that
// does not hear of the end keeps the session open until its idle timeout,
// since a restarted server knows nothing of the relay connection that
// dropped.
func (r *runner) reporter(ctx context.Context, cm *autopaho.ConnectionManager) Reporter {
	return func(s control.State) {
		err := r.publishState(ctx, cm, s)
		if err == nil {
			return
		}
		r.log.Warn("could not report a state", "kind", s.Kind, "session", s.Session, "reason", s.Reason, "err", err)
		if s.Kind == control.StateTunnelDown {
			r.mu.Lock()
			r.unreported[s.Session] = s
			r.mu.Unlock()
		}
	}
}

// sendUnreported publishes the sessions' ends that could not be published
// when they happened. There are at most as many as the sessions open when
// the connection was lost, since no session opens without one. The server
// ignores the end of a session it closed meanwhile.
func (r *runner) sendUnreported(ctx context.Context, cm *autopaho.ConnectionManager) {
	r.mu.Lock()
	ends := slices.Collect(maps.Values(r.unreported))
	r.mu.Unlock()
	for _, s := range ends {
		if err := r.publishState(ctx, cm, s); err != nil {
			r.log.Warn("could not report a session's end again; the next connection will", "session", s.Session, "reason", s.Reason, "err", err)
			return
		}
		r.log.Info("reported a session's end that could not be reported when it happened", "session", s.Session, "reason", s.Reason)
		r.mu.Lock()
		delete(r.unreported, s.Session)
		r.mu.Unlock()
	}
}
