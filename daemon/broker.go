package daemon

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/broker"
	"github.com/porthole/porthole/presence"
	"github.com/porthole/porthole/store"
)

// newBroker makes the embedded broker, authenticating devices against st
// and reporting their presence to tracker. It accepts devices once Serve
// hands it a listener.
func newBroker(st store.Store, tracker *presence.Tracker, logger *slog.Logger) (*broker.Broker, error) {
	b, err := broker.New(broker.Config{
		Logger:    logger,
		DeviceKey: deviceKeys(st),
		Presence:  tracker,
		// Queue and buffer sizes for many idle devices are the broker's
		// own defaults (DEPENDENCIES.md: about 26 KB per idle connection).
	})
	if err != nil {
		return nil, fmt.Errorf("starting the MQTT broker: %w", err)
	}
	return b, nil
}

// deviceKeys looks up the enrolled key of a device by fleet and device
// name; a device that does not exist, deleted ones included, is
// broker.ErrUnknownDevice.
func deviceKeys(st store.Store) func(ctx context.Context, fleet, device string) (ed25519.PublicKey, error) {
	return func(ctx context.Context, fleet, device string) (ed25519.PublicKey, error) {
		ds, err := st.ListDevices(ctx, store.DeviceFilter{FleetName: fleet, Name: device})
		if err != nil {
			return nil, fmt.Errorf("looking up device %s/%s: %w", fleet, device, err)
		}
		for _, d := range ds {
			if d.FleetName == fleet && d.Name == device {
				return ed25519Key(d.PublicKey)
			}
		}
		return nil, broker.ErrUnknownDevice
	}
}

// ed25519Key reads an ed25519 key from its authorized_keys line, as
// enrollment stores it.
func ed25519Key(line string) (ed25519.PublicKey, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, fmt.Errorf("reading a stored device key: %w", err)
	}
	if cpk, ok := pub.(ssh.CryptoPublicKey); ok {
		if key, ok := cpk.CryptoPublicKey().(ed25519.PublicKey); ok {
			return key, nil
		}
	}
	return nil, fmt.Errorf("a stored device key is %s; devices enroll with ssh-ed25519 keys", pub.Type())
}
