package daemon

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/porthole/porthole/brokerclient"
	"github.com/porthole/porthole/devicekeys"
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
// one that committed the change) and must not block. Dropping what is
// cached and waking waiters is safe on any hint; cutting a device or a
// session is done only once the store confirms it (store.Changes says why:
// a notice may be forged by anyone who can connect to the database).
func (s *Server) applyChange(ch store.Change) {
	s.deviceKeys.Apply(ch)
	s.sessions.Apply(ch)
	switch ch.Kind {
	case store.DeviceDeleted:
		s.goBackground(func() { s.confirmDeleted(ch.Fleet, ch.Device) })
	case store.SessionChanged:
		if ch.State == store.SessionClosed {
			s.goBackground(func() { s.confirmClosed(ch.Session) })
			if s.keys.CanSign() {
				// The close its device is due, if any, that a node
				// without the signing keys recorded (session.go says
				// why): the store says whether, so a forged notice
				// sends nothing.
				s.goBackground(func() { s.sendDueClose(ch.Session) })
			}
		}
	case store.ChangesLost:
		s.logger.Warn("the connection to the database that tells this node of other nodes' changes was lost and is back; reading again what they may have changed")
		if s.rechecking.CompareAndSwap(false, true) {
			s.goBackground(func() {
				defer s.rechecking.Store(false)
				s.recheckRelay()
				// Bounded, so that a database that hangs here does not
				// keep rechecking set, and every later recovery off.
				ctx, cancel := context.WithTimeout(context.Background(), dueCloseTimeout)
				defer cancel()
				s.sessions.SendAllDue(ctx)
			})
		}
	}
}

// goBackground runs f on a goroutine Close waits for, unless Close has
// begun.
func (s *Server) goBackground(f func()) {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.bgClosed {
		return
	}
	s.background.Go(f)
}

// confirmTimeout bounds the store read that confirms a change.
const confirmTimeout = 10 * time.Second

// sendDueClose sends the close command of session id if it is due.
// dueCloseTimeout bounds sending every due close after changes were
// lost: a claim, a read and a publish per due close.
const dueCloseTimeout = time.Minute

func (s *Server) sendDueClose(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), confirmTimeout)
	defer cancel()
	s.sessions.SendDue(ctx, id)
}

// confirmDeleted disconnects fleet/device if the store has no such device.
func (s *Server) confirmDeleted(fleet, device string) {
	ctx, cancel := context.WithTimeout(context.Background(), confirmTimeout)
	defer cancel()
	if _, err := devicekeys.StoreLookup(s.store)(ctx, fleet, device); !errors.Is(err, devicekeys.ErrUnknownDevice) {
		if err != nil {
			s.logger.Warn("could not check a device said to be deleted", "fleet", fleet, "device", device, "err", err)
		} else {
			s.logger.Warn("ignored a notice that a device was deleted: it exists (a notice from outside this deployment?)", "fleet", fleet, "device", device)
		}
		return
	}
	s.disconnectDevice(fleet, device)
}

// confirmClosed cuts session id at the relay if the store has it closed
// (or has it no more).
func (s *Server) confirmClosed(id string) {
	if !s.relay.Holds(id) {
		return // nothing of it here: nothing to read
	}
	ctx, cancel := context.WithTimeout(context.Background(), confirmTimeout)
	defer cancel()
	ses, err := s.store.GetSession(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && ses.State == store.SessionClosed:
		s.relay.CloseSession(id)
	case err != nil:
		s.logger.Warn("could not check a session said to be closed", "session", id, "err", err)
	default:
		s.logger.Warn("ignored a notice that a session was closed: it is open (a notice from outside this deployment?)", "session", id, "state", ses.State)
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
	if s.cfg.Broker.DynamicSecurity == nil {
		s.logger.Info("device deleted; its login to the external MQTT broker is the broker's: remove it there too", "fleet", fleet, "device", device)
		return
	}
	s.goBackground(func() { s.disableDynsecClient(fleet, device) })
}

// dynsecTimeout bounds one dynamic security command, login included.
const dynsecTimeout = 10 * time.Second

// disableDynsecClient disables a deleted device's client in Mosquitto's
// dynamic security plugin (broker.dynamic_security), which disconnects it
// and refuses its next logins. A failure is logged and changes nothing
// else: the device is deleted all the same, and its key no longer opens
// anything of portholed's.
func (s *Server) disableDynsecClient(fleet, device string) {
	ctx, cancel := context.WithTimeout(context.Background(), dynsecTimeout)
	defer cancel()
	d := s.cfg.Broker.DynamicSecurity
	password, err := dynsecPassword(d)
	if err == nil {
		c := brokerclient.Config{URL: d.URL, Username: d.Username, Password: password}
		if strings.HasPrefix(d.URL, "mqtts://") {
			c.CAFile = s.cfg.Broker.CAFile
		}
		err = brokerclient.DisableClient(ctx, c, fleet+"/"+device)
	}
	if err != nil {
		s.logger.Error("device deleted, but it could not be disabled on the external MQTT broker: it may stay connected there; disable it there by hand (mosquitto_ctrl dynsec disableClient)",
			"fleet", fleet, "device", device, "err", err)
		return
	}
	s.logger.Info("device deleted and disabled on the external MQTT broker (dynamic security), which disconnected it", "fleet", fleet, "device", device)
}

// recheckRelay cuts the sessions the relay carries that were closed, and
// the devices on the embedded broker that were deleted, while this node
// was not hearing changes.
func (s *Server) recheckRelay() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.broker != nil {
		lookup := devicekeys.StoreLookup(s.store)
		for _, d := range s.broker.Devices() {
			if _, err := lookup(ctx, d[0], d[1]); errors.Is(err, devicekeys.ErrUnknownDevice) {
				s.disconnectDevice(d[0], d[1])
			}
		}
	}
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
