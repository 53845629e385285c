package daemon

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/ca"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/devicekeys"
	"github.com/porthole/porthole/relay"
	"github.com/porthole/porthole/session"
	"github.com/porthole/porthole/store"
)

// deviceLeftGrace is how long the server waits, after a device's relay
// connection drops, for the device's own word (tunnel_down) before it
// closes the device's sessions itself.
const deviceLeftGrace = 5 * time.Second

// relayCertLife is how long the relay's host certificate is valid on an
// API node, which signs it anew at every start.
const relayCertLife = 365 * 24 * time.Hour

// newRelay makes the SSH relay: devices log in with their enrolled keys
// (from deviceKeys),
// engineers with session certificates, and both are checked against the
// sessions in the store. Its host key is certified by the host CA for the
// host name of publicAddr, which is what devices and clients dial: on an
// API node as it starts, elsewhere by an API node ahead
// (keys.RelayHostCert, from portholed init-node). Its refusals go to
// refused, for the audit log.
func newRelay(st store.Store, relayID string, deviceKeys *devicekeys.Cache, keys *ca.Keys, sessions *session.Manager, publicAddr string, refused func(relay.Refusal), logger *slog.Logger) (*relay.Relay, error) {
	host, _, err := net.SplitHostPort(publicAddr)
	if err != nil {
		return nil, fmt.Errorf("relay.public_addr %q is not host:port: %w", publicAddr, err)
	}
	cert := keys.RelayHostCert
	if cert == nil {
		if cert, err = keys.SignRelayHostCert([]string{host}, time.Now(), relayCertLife); err != nil {
			return nil, fmt.Errorf("certifying the relay's host key: %w", err)
		}
	}
	hostKey, err := ssh.NewCertSigner(cert, keys.RelayHost)
	if err != nil {
		return nil, fmt.Errorf("using the relay's host certificate: %w", err)
	}
	var r *relay.Relay
	r, err = relay.New(relay.Config{
		ID:      relayID,
		HostKey: hostKey,
		UserCA:  keys.UserCAPub,
		DeviceKey: func(ctx context.Context, fleet, device string) (ed25519.PublicKey, error) {
			key, err := deviceKeys.Key(ctx, fleet, device)
			if errors.Is(err, devicekeys.ErrUnknownDevice) {
				return nil, relay.ErrUnknownDevice
			}
			return key, err
		},
		Session: func(ctx context.Context, id string) (relay.Session, error) {
			ses, err := st.GetSession(ctx, id)
			if errors.Is(err, store.ErrNotFound) {
				return relay.Session{}, relay.ErrUnknownSession
			} else if err != nil {
				return relay.Session{}, err
			}
			return relay.Session{
				ID: ses.ID, Fleet: ses.FleetName, Device: ses.DeviceName,
				// A device dials the relay only once it has been asked to
				// (and, in approve consent, once its owner said yes, which
				// the server hears of with tunnel_up, after the dial). The
				// session is recorded as connecting before the open command
				// goes out (session.Open), so a device that registers at
				// once finds it so.
				Open: ses.State == store.SessionConnecting ||
					ses.State == store.SessionWaitingConsent || ses.State == store.SessionActive,
				Ends:  ses.Asked().Add(ses.MaxDuration),
				Relay: ses.RelayID,
			}, nil
		},
		Activity: sessions.Activity, // the server's idle timeout
		// The relay saw the device register the session: as good as its
		// tunnel_up, and the session must not run unrecorded as active
		// if the broker delays or loses that message.
		DeviceRegistered: func(fleet, device, id string) {
			sessions.HandleState(fleet, device, control.State{Kind: control.StateTunnelUp, Session: id})
		},
		// A device whose relay connection dropped without a tunnel_down
		// (killed, or cut off) leaves its sessions open on the server
		// until a limit; close them after a short grace instead. On a
		// node without the api role the close is recorded with its
		// command due, which an API node sends.
		DeviceLeft: func(ids []string) {
			time.AfterFunc(deviceLeftGrace, func() {
				ctx, cancel := context.WithTimeout(audit.WithActor(context.Background(), audit.System), 10*time.Second)
				defer cancel()
				for _, id := range ids {
					if r.Registered(id) {
						continue
					}
					if _, err := sessions.CloseSession(ctx, id, control.CloseDeviceDisconnected); err != nil {
						logger.Error("closing a session whose device left the relay", "session", id, "err", err)
					}
				}
			})
		},
		Refused: refused,
		Logger:  logger, // which logs every refusal
	})
	if err != nil {
		return nil, fmt.Errorf("starting the relay: %w", err)
	}
	return r, nil
}
