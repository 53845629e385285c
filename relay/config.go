package relay

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/porthole/porthole/relay/relayproto"
	"golang.org/x/crypto/ssh"
)

var (
	// ErrClosed is returned by Serve once Close has been called, and by a
	// second Close.
	ErrClosed = fmt.Errorf("relay: %w", net.ErrClosed)

	// ErrUnknownDevice is what [Config.DeviceKey] returns for a device that
	// does not exist (never enrolled, or deleted).
	ErrUnknownDevice = errors.New("relay: unknown device")

	// ErrUnknownSession is what [Config.Session] returns for a session id
	// that does not exist.
	ErrUnknownSession = errors.New("relay: unknown session")
)

// Session is what the relay needs to know of a session.
type Session struct {
	ID     string // the id that was looked up
	Fleet  string // the device's fleet
	Device string // the device's name
	// Open: the device may register the session and the engineer may
	// reach it. False once the session has ended for any reason.
	Open bool
	// Ends is when the session ends at the latest (its maximum duration);
	// the relay cuts it then by itself. Zero: no limit known.
	Ends time.Time
	// Relay is the ID of the relay the session was placed on (package
	// relays); another relay refuses it, so that a device or engineer
	// who dials the wrong node hears so instead of waiting there for the
	// other. Empty: any relay.
	Relay string
}

// Role is who a peer of the relay is, or claims to be at login.
type Role string

// The two kinds of peers.
const (
	RoleDevice   Role = "device"
	RoleEngineer Role = "engineer"
)

// Refusal describes something the relay refused: a login, a request or a
// channel. Fields that are not known are empty.
type Refusal struct {
	At     time.Time // by Config.Now
	Remote string    // the peer's address
	Role   Role      // a device name at login makes a device; anything else an engineer
	User   string    // the SSH user name
	// Fleet and Device name the device: the peer itself, or the one the
	// engineer's certificate names.
	Fleet, Device string
	Session       string // the session concerned
	Engineer      string // who holds the certificate (its key id's user)
	What          string // what was asked: "login", "tcpip-forward", "channel direct-tcpip", ...
	Why           string // why it was refused, in plain words

	// code is the second protocol's reply code for it (relayproto.Code*):
	// whether trying again may help. Empty: CodeRefused.
	code string
}

// replyCode is f's reply code on the second protocol.
func (f Refusal) replyCode() string {
	if f.code == "" {
		return relayproto.CodeRefused
	}
	return f.code
}

// Config configures a Relay. HostKey, UserCA, DeviceKey and Session are
// required; every other zero value means the default documented on the
// field.
type Config struct {
	// ID is this relay's ID in the registry of relays: sessions placed on
	// another relay are refused (Session.Relay). Empty: none is refused
	// for that.
	ID string

	// HostKey is the relay's host key, normally wrapped with its host
	// certificate from the host CA (ssh.NewCertSigner), so that clients
	// check it against the CA. Required.
	HostKey ssh.Signer

	// UserCA is the CA that signs engineers' session certificates.
	// Required.
	UserCA ssh.PublicKey

	// DeviceKey returns the enrolled ed25519 key of a device, or
	// ErrUnknownDevice if there is no such device or it was deleted. The
	// context ends after HandshakeTimeout or when the relay closes.
	// Required.
	DeviceKey func(ctx context.Context, fleet, device string) (ed25519.PublicKey, error)

	// Session looks a session up by id, or returns ErrUnknownSession. The
	// context ends after HandshakeTimeout or when the relay closes.
	// Required.
	Session func(ctx context.Context, id string) (Session, error)

	// Activity is told that an engineer opened a channel or sent data on
	// a session, at most
	// once per ActivityInterval per session. It runs on the data path, so
	// it should return quickly. Nil: nobody is told.
	Activity func(sessionID string)

	// ActivityInterval is the least time between two Activity calls for
	// one session. Zero: 30 s.
	ActivityInterval time.Duration

	// DeviceLeft is told, without waiting, of the sessions a device's
	// connection had registered when it dropped (the agent was killed, or
	// its network went): a device that ends a session says so on the
	// control channel, so the server can close one it hears nothing
	// about. Nil: nobody is told.
	DeviceLeft func(sessionIDs []string)

	// DeviceRegistered is told, without waiting, that device of fleet,
	// authenticated by its key, registered session: the device has
	// admitted it (its owner's consent included) and the session is up,
	// whatever becomes of the device's tunnel_up on the control channel,
	// which a broker may delay or lose. Nil: nobody is told.
	DeviceRegistered func(fleet, device, sessionID string)

	// Refused is told of every refusal, for the audit log; the relay also
	// logs each one. It should return quickly. Nil: only logged.
	Refused func(Refusal)

	// Logger receives the relay's lines. Nil discards them.
	Logger *slog.Logger

	// Now is the clock for certificate validity, session ends and activity.
	// Nil: time.Now.
	Now func() time.Time

	// HandshakeTimeout bounds a new connection's SSH handshake, including
	// its login and the lookups it needs, and every later lookup of a
	// session. Zero: 10 s.
	HandshakeTimeout time.Duration

	// MaxHandshakes caps connections in their handshake at once, of both
	// protocols, those waiting for their source's turn included; further
	// connections are closed at once. Zero: 512.
	MaxHandshakes int

	// MaxHandshakesPerSource caps connections in their handshake at once
	// from one source (an IPv4 address, or an IPv6 /64), so that one
	// source holding connections open without logging in cannot take
	// every slot. As many more from the source wait for a turn (within
	// HelloTimeout), so that a burst from one network (many engineers
	// behind one NAT, a device opening many sessions) is served a moment
	// later; past that they are closed at once. Zero: 32.
	MaxHandshakesPerSource int

	// HelloTimeout bounds how long a new connection may take to say who
	// it is, from when it was accepted (its wait for its source's turn
	// included): an SSH client to offer a key, a client of the second
	// protocol to send its hello. A connection that has not is closed;
	// one that has is given the rest of HandshakeTimeout for the lookups
	// that decide its login. Zero: 5 s.
	HelloTimeout time.Duration

	// KeepAliveInterval is how often the relay checks that a client is
	// still there; a client that leaves three checks in a row unanswered
	// is disconnected. Zero: 30 s.
	KeepAliveInterval time.Duration

	// RegistrationWait is how long an engineer's channel waits for the
	// device to register the session before it is rejected. Zero: 5 s.
	RegistrationWait time.Duration

	// EarlyWait is how long an engineer of the second protocol, who dials
	// while the device is still being woken (and, in approve consent, while
	// its owner decides), waits for the device to register the session. A
	// session closed meanwhile ends the wait at once. Zero: 10 min.
	EarlyWait time.Duration
}

const (
	defaultActivityInterval  = 30 * time.Second
	defaultHandshakeTimeout  = 10 * time.Second
	defaultMaxHandshakes     = 512
	defaultMaxPerSource      = 32
	defaultHelloTimeout      = 5 * time.Second
	defaultKeepAliveInterval = 30 * time.Second
	defaultRegistrationWait  = 5 * time.Second
	defaultEarlyWait         = 10 * time.Minute

	// keepAliveMisses unanswered keep-alives in a row close a connection.
	keepAliveMisses = 3
	// maxAuthTries bounds failed logins per connection (OpenSSH's default).
	maxAuthTries = 6
)

// withDefaults returns cfg with every zero field set to its default, or an
// error naming the first field that cannot work.
func (cfg Config) withDefaults() (Config, error) {
	switch {
	case cfg.HostKey == nil:
		return cfg, errors.New("relay: Config.HostKey is required")
	case cfg.UserCA == nil:
		return cfg, errors.New("relay: Config.UserCA is required")
	case cfg.DeviceKey == nil:
		return cfg, errors.New("relay: Config.DeviceKey is required")
	case cfg.Session == nil:
		return cfg, errors.New("relay: Config.Session is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Activity == nil {
		cfg.Activity = func(string) {}
	}
	if cfg.Refused == nil {
		cfg.Refused = func(Refusal) {}
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"ActivityInterval", &cfg.ActivityInterval, defaultActivityInterval},
		{"HandshakeTimeout", &cfg.HandshakeTimeout, defaultHandshakeTimeout},
		{"HelloTimeout", &cfg.HelloTimeout, defaultHelloTimeout},
		{"KeepAliveInterval", &cfg.KeepAliveInterval, defaultKeepAliveInterval},
		{"RegistrationWait", &cfg.RegistrationWait, defaultRegistrationWait},
		{"EarlyWait", &cfg.EarlyWait, defaultEarlyWait},
	} {
		if *d.v < 0 {
			return cfg, fmt.Errorf("relay: %s %v is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if cfg.MaxHandshakes < 0 {
		return cfg, fmt.Errorf("relay: MaxHandshakes %d is negative", cfg.MaxHandshakes)
	}
	if cfg.MaxHandshakes == 0 {
		cfg.MaxHandshakes = defaultMaxHandshakes
	}
	if cfg.MaxHandshakesPerSource < 0 {
		return cfg, fmt.Errorf("relay: MaxHandshakesPerSource %d is negative", cfg.MaxHandshakesPerSource)
	}
	if cfg.MaxHandshakesPerSource == 0 {
		cfg.MaxHandshakesPerSource = defaultMaxPerSource
	}
	return cfg, nil
}
