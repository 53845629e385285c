package control

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Version is the command format this package speaks, the payload's "v".
const Version = 1

// Command types.
const (
	TypeOpen  = "open"  // dial the relay and offer the session
	TypeClose = "close" // end the session now
)

// Validity limits of a command, in device time.
const (
	// MaxValidity is how far ahead a command's not_after may lie. It bounds
	// how long a captured command stays usable and how long its nonce must
	// be remembered.
	MaxValidity = 10 * time.Minute
	// DefaultValidity is what the server should give a command: long enough
	// for a broker to deliver it to a device that reconnects, well inside
	// MaxValidity.
	DefaultValidity = 5 * time.Minute
	// ClockSkew is how far the device's clock may differ from the server's
	// in either direction: both the expiry and the too-far-ahead checks
	// allow it.
	ClockSkew = time.Minute
)

// maxUnix is the last second of year 9999; later times overflow time.Time
// arithmetic.
const maxUnix = 253402300799

// Command is the signed payload of a message on a device's cmd topic. The
// JSON names are the wire format.
type Command struct {
	V       int    `json:"v"`       // Version
	Type    string `json:"type"`    // TypeOpen or TypeClose
	Session string `json:"session"` // session id, a ValidToken
	Fleet   string `json:"fleet"`   // the addressed device's fleet
	Device  string `json:"device"`  // the addressed device's name
	// Relay is the "host:port" of the SSH relay (the relay's first
	// protocol) the device dials; open only.
	Relay string `json:"relay,omitempty"`
	// Relay2 is the "host:port" of the TLS port where the relay the
	// session was placed on serves its second protocol; open only, and
	// empty from a server that places no sessions (the device then dials
	// the server it enrolled with).
	Relay2 string `json:"relay2,omitempty"`
	// Ports are the device ports the engineer asks to reach (1-65535);
	// the device grants only those in its own allow-list.
	Ports []int `json:"ports,omitempty"`
	// IdleTimeoutS and MaxDurationS are the server's limits in seconds; 0
	// means the device's own default. The device may shorten them, never
	// lengthen them.
	IdleTimeoutS int `json:"idle_timeout_s,omitempty"`
	MaxDurationS int `json:"max_duration_s,omitempty"`
	// NotAfter is the last moment (unix seconds) the command is valid.
	NotAfter int64 `json:"not_after"`
	// Nonce is random and unique per command (Sign fills it), so the
	// device can refuse a replay.
	Nonce string `json:"nonce"`
}

// Expiry is NotAfter as a time.
func (c *Command) Expiry() time.Time { return time.Unix(c.NotAfter, 0) }

// errBadField explains why a command's fields are unusable.
var errBadField = errors.New("control: bad command field")

// checkFields checks what must hold of any command of a known type,
// whatever the time and whoever receives it.
func (c *Command) checkFields() error {
	if !ValidToken(c.Session) {
		return fmt.Errorf("%w: session %q is not 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'", errBadField, c.Session)
	}
	if !validNonce(c.Nonce) {
		return fmt.Errorf("%w: nonce %q is not 16 to 64 of A-Z, a-z, 0-9, '.', '_', '-'", errBadField, c.Nonce)
	}
	if c.NotAfter <= 0 || c.NotAfter > maxUnix {
		return fmt.Errorf("%w: not_after %d is not a unix time in seconds", errBadField, c.NotAfter)
	}
	if c.IdleTimeoutS < 0 || c.MaxDurationS < 0 {
		return fmt.Errorf("%w: negative idle_timeout_s or max_duration_s", errBadField)
	}
	for _, p := range c.Ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("%w: port %d is out of range 1-65535", errBadField, p)
		}
	}
	if c.Type == TypeOpen {
		if err := checkHostPort(c.Relay); err != nil {
			return fmt.Errorf("%w: relay: %w", errBadField, err)
		}
		if c.Relay2 != "" {
			if err := checkHostPort(c.Relay2); err != nil {
				return fmt.Errorf("%w: relay2: %w", errBadField, err)
			}
		}
	}
	return nil
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return fmt.Errorf("%q has no host", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q has no port in range 1-65535", addr)
	}
	return nil
}

func knownType(t string) bool { return t == TypeOpen || t == TypeClose }
