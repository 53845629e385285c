package control

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
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
	// the device grants only those in its own allow-list (and in
	// Policy.Ports when the fleet names some).
	Ports []int `json:"ports,omitempty"`
	// IdleTimeoutS and MaxDurationS are the server's limits in seconds; 0
	// means the device's own default. The device may shorten them, never
	// lengthen them.
	IdleTimeoutS int `json:"idle_timeout_s,omitempty"`
	MaxDurationS int `json:"max_duration_s,omitempty"`
	// Policy is what the fleet's policy asks of the device for this
	// session; open only, and nil (absent from the JSON) when the fleet
	// asks nothing of it. Its limits need no field of their own: the
	// server has already shortened IdleTimeoutS and MaxDurationS by them.
	Policy *Policy `json:"policy,omitempty"`
	// NotAfter is the last moment (unix seconds) the command is valid.
	NotAfter int64 `json:"not_after"`
	// Nonce is random and unique per command (Sign fills it), so the
	// device can refuse a replay.
	Nonce string `json:"nonce"`
}

// Consent floors a fleet's policy may set (Policy.ConsentFloor). They are
// the owner's consent modes that are not auto, from the weaker: the device
// applies the stricter of its owner's mode and the floor, in the order
// auto < approve < manual, so a floor can make consent stricter, never
// looser.
const (
	FloorApprove = "approve"
	FloorManual  = "manual"
)

// maxPolicyName bounds the engineers' names a Policy carries (an email
// is at most 254 bytes).
const maxPolicyName = 254

// Policy is the part of a fleet's policy that the device itself applies
// to one session. The server signs it with the rest of the command, so
// nobody between the two can widen it; and the device applies it only on
// top of its owner's config, so the server cannot widen that either.
//
// An agent that predates Policy refuses a command carrying one as
// malformed (commands are decoded strictly): a session the fleet's policy
// asks something of never opens on it unasked. The server therefore
// leaves Policy out when the fleet asks nothing of the device.
type Policy struct {
	// Ports, when not nil, are the only device ports the fleet allows:
	// the device grants a port only if it is in Ports, in the command's
	// Ports and in its owner's allow_ports. JSON null (or no field):
	// the fleet names no ports; [] allows none.
	Ports []int `json:"ports"`
	// ConsentFloor is FloorApprove, FloorManual or empty (none): the
	// device asks for the stricter of its owner's consent and this.
	ConsentFloor string `json:"consent_floor,omitempty"`
	// RequestedBy and ApprovedBy name the engineer who asked for the
	// session and, when the fleet needs a second engineer to agree
	// (four-eyes), the one who approved it, for the owner's log.
	RequestedBy string `json:"requested_by,omitempty"`
	ApprovedBy  string `json:"approved_by,omitempty"`
}

// check: ports in range, a known floor, printable names.
func (p *Policy) check() error {
	for _, port := range p.Ports {
		if port < 1 || port > 65535 {
			return fmt.Errorf("policy port %d is out of range 1-65535", port)
		}
	}
	switch p.ConsentFloor {
	case "", FloorApprove, FloorManual:
	default:
		return fmt.Errorf("policy consent_floor %q is not approve or manual", p.ConsentFloor)
	}
	for _, f := range []struct{ what, name string }{{"requested_by", p.RequestedBy}, {"approved_by", p.ApprovedBy}} {
		what, name := f.what, f.name
		if len(name) > maxPolicyName || strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) || r == ' ' }) >= 0 {
			return fmt.Errorf("policy %s %q is not a name of at most %d printable characters without spaces", what, name, maxPolicyName)
		}
	}
	return nil
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
	if c.Policy != nil {
		if c.Type != TypeOpen {
			return fmt.Errorf("%w: a %s command carries no policy", errBadField, c.Type)
		}
		if err := c.Policy.check(); err != nil {
			return fmt.Errorf("%w: %w", errBadField, err)
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
