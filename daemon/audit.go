package daemon

import (
	"sync"

	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/connlimit"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/relay"
)

// The server's audit events that no API call makes: the relay's refusals
// and the commands devices report rejecting. Outsiders can cause either at
// will (a scanner at the relay's port, a device's own state messages), so
// they go through an audit.Queue, which bounds their rate and counts what
// it leaves out, off the relay's and the broker's goroutines.

// relayRefusal is the audit event of something the relay refused. A
// refused login is by someone not authenticated, named as they named
// themselves: it is the server's, not the fleet's whose names it claimed
// (anyone can claim any name), with the names it claimed in its detail.
// Anything later is by the device or the engineer the relay had let in,
// in their fleet's log.
func relayRefusal(f relay.Refusal) audit.Event {
	actor := audit.Anonymous(f.User)
	detail := map[string]string{"what": f.What, "why": f.Why, "remote": f.Remote, "role": string(f.Role), "user": f.User}
	switch {
	case f.What == "login":
		if f.Fleet != "" {
			detail["claimed_device"] = f.Fleet + "/" + f.Device
		}
		if f.Session != "" {
			detail["claimed_session"] = f.Session
		}
		return audit.Event{Time: f.At, Kind: audit.RelayRefused, Actor: actor, Detail: detail}
	case f.Role == relay.RoleDevice:
		actor = audit.Device("", f.Fleet, f.Device)
	case f.Engineer != "":
		actor = audit.Actor{Kind: audit.ActorUser, Name: f.Engineer}
	}
	return audit.Event{Time: f.At, Kind: audit.RelayRefused, Actor: actor, Fleet: f.Fleet, Device: f.Device, Session: f.Session, Detail: detail}
}

// auditRefusal queues the audit event of a relay refusal: a refused login
// within its source's share of the rate (a flood from one address leaves
// the rate to the others), anything refused to a party the relay had let
// in always (its author is known and answerable).
func auditRefusal(q *audit.Queue, f relay.Refusal) {
	ev := relayRefusal(f)
	if f.What == "login" {
		q.AddFrom(connlimit.SourceOf(f.Remote), ev)
		return
	}
	q.AddAuthenticated(ev)
}

// rejections records the commands devices report rejecting
// ("rejected <reason>" on their state topic). States are retained, so the
// same one is delivered again at start and each time the server regains an
// external broker: a rejection is recorded when the device's previous
// state, as this process saw it, was not the same rejection. (So one still
// retained when the server restarts is recorded once more.) Only devices
// whose last state is a rejection are remembered.
type rejections struct {
	q    *audit.Queue
	mu   sync.Mutex
	last map[string]string // guarded by mu: fleet/device → reason of its last state, a rejection
}

func newRejections(q *audit.Queue) *rejections {
	return &rejections{q: q, last: map[string]string{}}
}

// onState is a state handler (Server.onState).
func (r *rejections) onState(fleet, device string, st control.State) {
	key := fleet + "/" + device
	r.mu.Lock()
	if st.Kind != control.StateRejected {
		delete(r.last, key)
		r.mu.Unlock()
		return
	}
	reason, seen := r.last[key]
	r.last[key] = st.Reason
	r.mu.Unlock()
	if seen && reason == st.Reason {
		return
	}
	r.q.Add(audit.Event{Kind: audit.CommandRejected, Actor: audit.Device("", fleet, device), Fleet: fleet, Device: device,
		Detail: map[string]string{"reason": st.Reason}})
}
