package broker

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// ErrUnknownDevice is what [Config.DeviceKey] returns for a device that does
// not exist (never enrolled, or deleted): the broker refuses it as a bad
// username or password rather than as an outage.
var ErrUnknownDevice = errors.New("broker: unknown device")

// PresenceHandler learns when devices come and go. Calls for one device never
// overlap and arrive in order; calls for different devices may run at the same
// time. They run on the broker's connection goroutines and hold up that
// device's (and a few others') connect or disconnect, so they should return
// quickly.
type PresenceHandler interface {
	// DeviceConnected: the device has an established session (each new
	// connection, including one that replaces the device's previous one).
	// It has not subscribed yet, so a command published now is lost: wait
	// for its "online" state before sending it anything.
	DeviceConnected(fleet, device string, at time.Time)
	// DeviceDisconnected: the device's connection ended (clean disconnect,
	// dropped TCP, keep-alive timeout, broker shutdown) and no newer one has
	// replaced it. It can also follow a connection that failed between
	// authentication and CONNACK, with no DeviceConnected of its own: treat
	// both calls as setting a state, not as a pair.
	DeviceDisconnected(fleet, device string, at time.Time)
}

// Config configures a Broker. Only DeviceKey is required; every other zero
// value means the default documented on the field.
type Config struct {
	// Logger receives the broker's own lines and, demoted to debug, the
	// underlying MQTT library's. Nil discards them.
	Logger *slog.Logger

	// DeviceKey returns the enrolled ed25519 key of a device, or
	// ErrUnknownDevice (with a nil key) if there is no such device or it was
	// deleted. Any other error refuses the connection as "server
	// unavailable", so the device retries. The context ends after
	// ConnectTimeout or when the broker closes. Required.
	DeviceKey func(ctx context.Context, fleet, device string) (ed25519.PublicKey, error)

	// ServerPassword, when set, lets the other portholed nodes of the
	// deployment log in as ServerUsername with it, to read the devices'
	// states and send them commands (see OnACLCheck). Nil: only devices
	// log in.
	ServerPassword []byte

	// Presence is told when devices connect and disconnect. Nil: nobody is.
	Presence PresenceHandler

	// Now is the clock for device passwords and presence times. Nil: time.Now.
	Now func() time.Time

	// MaxClients caps concurrent device connections; further ones are refused
	// as "server busy". Zero: no cap.
	MaxClients int

	// MaxPacketSize caps one MQTT packet in either direction, in bytes.
	// Commands are at most 16 KiB. Zero: 32 KiB.
	MaxPacketSize int

	// ConnectTimeout bounds the TLS handshake, CONNECT and the DeviceKey
	// lookup of a new connection. Zero: 10 s.
	ConnectTimeout time.Duration

	// MinKeepAlive and MaxKeepAlive bound the keep-alive of a device: a
	// shorter one is raised; an MQTT 5 device asking for a longer one, or
	// none, is told MaxKeepAlive; an MQTT 3.1.1 device, which cannot be
	// told, is refused. A silent device is dropped after 1.5 keep-alives.
	// Truncated to whole seconds. Zero: 30 s and 5 min.
	MinKeepAlive, MaxKeepAlive time.Duration

	// WritesPending is how many outgoing packets may queue for one device
	// before further ones are dropped: as many commands as the broker holds
	// for a device (256, sent at once to an agent that takes that many),
	// and the acknowledgements of its states. Zero: 320, a channel of 2.5
	// KB for each connection.
	WritesPending int

	// BufferSize is the size of each connection's read and write buffer, in
	// bytes. Small buffers keep millions of idle connections cheap; larger
	// packets are still read and written whole. Zero: 512.
	BufferSize int
}

const (
	defaultMaxPacketSize  = 32 << 10
	defaultConnectTimeout = 10 * time.Second
	defaultMinKeepAlive   = 30 * time.Second
	defaultMaxKeepAlive   = 5 * time.Minute
	defaultWritesPending  = maxInflight + 64
	defaultBufferSize     = 512

	// maxKeepAlive is what MQTT's 16-bit keep-alive (in seconds) can carry
	// without mochi's 1.5x deadline arithmetic overflowing.
	maxKeepAlive = 43690 * time.Second
)

// withDefaults returns cfg with every zero field set to its default, or an
// error naming the first field that cannot work.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.DeviceKey == nil {
		return cfg, errors.New("broker: Config.DeviceKey is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	setDefault(&cfg.MaxPacketSize, defaultMaxPacketSize)
	setDefault(&cfg.ConnectTimeout, defaultConnectTimeout)
	setDefault(&cfg.MinKeepAlive, defaultMinKeepAlive)
	setDefault(&cfg.MaxKeepAlive, defaultMaxKeepAlive)
	setDefault(&cfg.WritesPending, defaultWritesPending)
	setDefault(&cfg.BufferSize, defaultBufferSize)

	switch {
	case cfg.MaxClients < 0:
		return cfg, fmt.Errorf("broker: MaxClients %d is negative", cfg.MaxClients)
	case cfg.MaxPacketSize < 1<<10:
		return cfg, fmt.Errorf("broker: MaxPacketSize %d is under 1 KiB", cfg.MaxPacketSize)
	case cfg.ConnectTimeout < 0:
		return cfg, fmt.Errorf("broker: ConnectTimeout %v is negative", cfg.ConnectTimeout)
	case cfg.MinKeepAlive < time.Second || cfg.MinKeepAlive > cfg.MaxKeepAlive || cfg.MaxKeepAlive > maxKeepAlive:
		return cfg, fmt.Errorf("broker: keep-alive range %v to %v must lie within 1s to %v", cfg.MinKeepAlive, cfg.MaxKeepAlive, maxKeepAlive)
	case cfg.WritesPending < 1 || cfg.WritesPending > 1<<20:
		return cfg, fmt.Errorf("broker: WritesPending %d is not between 1 and 2^20", cfg.WritesPending)
	case cfg.BufferSize < 64:
		return cfg, fmt.Errorf("broker: BufferSize %d is under 64 bytes", cfg.BufferSize)
	}
	return cfg, nil
}

func setDefault[T comparable](field *T, def T) {
	var zero T
	if *field == zero {
		*field = def
	}
}
