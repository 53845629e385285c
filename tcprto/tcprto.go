// Package tcprto caps how long TCP waits between two retransmissions on
// Porthole's long-lived connections (a device's MQTT and relay
// connections, at the device and at the server), so that what one end sent
// during a network outage is sent again within seconds of the network
// coming back.
//
// TCP doubles its retransmission timeout after each unanswered try: after
// a 30 s outage the next try may be 25 s or more away (0.2 s, 0.4 s, ...,
// 12.8 s, 25.6 s), and everything else sent on the connection waits
// behind it. A command the server sent to a device during the outage (an
// engineer asking for a session meanwhile) held up every later command
// for that long after the network healed, though the device, which had
// sent nothing, could not tell that its connection was stalled. With the
// timeout capped at MaxRTO, each end tries again at least every MaxRTO.
//
// The cap needs Linux 6.15 or later (TCP_RTO_MAX_MS); elsewhere the
// connections keep the system's backoff. A connection whose data stays
// unanswered gives up after about 12 MaxRTO (the system's retry count,
// tcp_retries2, at the capped timeout) instead of about 15 minutes; the
// MQTT and relay keep-alives notice dead peers sooner than either.
package tcprto

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// MaxRTO is the longest wait between two retransmissions: well above the
// timeout of any path a device uses (round trip plus four deviations), so
// that it changes nothing until a path stops answering.
const MaxRTO = 3 * time.Second

// errUnsupported: this system has no cap on the retransmission timeout.
var errUnsupported = errors.New("tcprto: no cap on the retransmission timeout on this system")

// Control caps the retransmission timeout of a socket about to connect or
// listen; it is a net.Dialer's or a net.ListenConfig's Control. It never
// fails the connection: where the cap cannot be set, the socket keeps the
// system's backoff.
func Control(_, _ string, c syscall.RawConn) error {
	_ = c.Control(func(fd uintptr) { _ = setMaxRTO(fd, MaxRTO) })
	return nil
}

// Listener returns l with the retransmission timeout of each TCP
// connection it accepts capped.
func Listener(l net.Listener) net.Listener { return listener{l} }

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			_ = Control("", "", rc)
		}
	}
	return c, err
}

// Dialer is a net.Dialer whose connections have their retransmission
// timeout capped.
func Dialer() *net.Dialer { return &net.Dialer{Control: Control} }
