package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/porthole/porthole/store"
)

// The store announces the changes every server node must act on at once
// (store.Changes): with PostgreSQL each node hears them through NOTIFY,
// in the order they were committed, and the node that made a change hears
// of it before the call that made it returns. So a device deleted through
// one node's API loses its cached key and its connections on every node,
// and a session closed on one node (by its engineer, its device's word or
// a limit its sweeper enforced) is cut by whichever node's relay carries
// it. PostgreSQL and not the MQTT broker carries these, because the
// change and its announcement are then one transaction: no node hears of
// a change that was rolled back, none misses one that was committed
// while it listened, and one that lost its connection is told so
// (ChangesLost) and reads again.

// watchChanges follows the store's changes until Close.
func (s *Server) watchChanges() {
	ctx, stop := context.WithCancel(context.Background())
	s.stopWatching = stop
	s.store.Watch(ctx, s.applyChange)
}

// applyChange acts on one change; it runs on the store's goroutine (or the
// one that committed the change) and must not block.
func (s *Server) applyChange(ch store.Change) {
	s.deviceKeys.Apply(ch)
	s.sessions.Apply(ch)
	switch ch.Kind {
	case store.DeviceDeleted:
		s.disconnectDevice(ch.Fleet, ch.Device)
	case store.SessionChanged:
		if ch.State == store.SessionClosed {
			s.relay.CloseSession(ch.Session) // a no-op where the relay holds nothing of it
		}
	case store.ChangesLost:
		s.logger.Warn("the connection to the database that tells this node of other nodes' changes was lost and is back; reading again what they may have changed")
		s.background.Go(s.recheckRelay)
	}
}

// disconnectDevice ends what this node holds of a deleted device: its
// relay connections, and its login to the embedded broker (its key is no
// longer accepted, but an open connection would stay).
func (s *Server) disconnectDevice(fleet, device string) {
	s.relay.DisconnectDevice(fleet, device)
	if s.broker != nil {
		s.broker.Disconnect(fleet, device)
		return
	}
	s.extPresence.Forget(fleet, device)
	s.logger.Info("device deleted; its login to the external MQTT broker is the broker's: remove it there too", "fleet", fleet, "device", device)
}

// recheckRelay cuts the sessions the relay carries that were closed while
// this node was not hearing changes.
func (s *Server) recheckRelay() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, id := range s.relay.Sessions() {
		ses, err := s.store.GetSession(ctx, id)
		switch {
		case errors.Is(err, store.ErrNotFound) || err == nil && ses.State == store.SessionClosed:
			s.relay.CloseSession(id)
		case err != nil:
			s.logger.Warn("checking a relayed session after missing changes", "session", id, "err", err)
		}
	}
}
