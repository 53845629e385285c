package brokerclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/eclipse/paho.golang/autopaho"
)

var (
	// ErrClosed is returned by a Client's methods after Close, and by a
	// second Close.
	ErrClosed = fmt.Errorf("brokerclient: %w", net.ErrClosed)

	// ErrNotConnected is in the chain of the error Publish returns at once
	// while the client has no connection to the broker (it keeps
	// reconnecting in the background): the control channel is down.
	ErrNotConnected = errors.New("brokerclient: not connected to the MQTT broker")

	// ErrLoginRefused is in the chain of the error Connect returns when the
	// broker answered and refused the login (bad username, password or
	// certificate, or a client id it does not allow).
	ErrLoginRefused = errors.New("brokerclient: the MQTT broker refused the login")

	// ErrRefused is in the chain of the error Publish or Subscribe returns
	// when the broker refused that one message or subscription, most often
	// because its ACL does not allow the topic.
	ErrRefused = errors.New("brokerclient: the MQTT broker refused the request")
)

// describedError carries a sentence for the operator while keeping the
// causes reachable with errors.Is and errors.As.
type describedError struct {
	msg  string
	errs []error
}

func (e *describedError) Error() string   { return e.msg }
func (e *describedError) Unwrap() []error { return e.errs }

// connectError turns a failed connection attempt into a sentence naming the
// broker and what went wrong, and says whether trying again is pointless.
func (s *settings) connectError(err error) (described error, permanent bool) {
	var connack *autopaho.ConnackError
	if errors.As(err, &connack) {
		who := "portholed's login"
		if s.Username != "" {
			who = fmt.Sprintf("portholed's login as %q", s.Username)
		}
		msg := fmt.Sprintf("brokerclient: the MQTT broker at %s refused %s: %s", s.url, who, reasonName(connack.ReasonCode))
		if loginReason(connack.ReasonCode) {
			msg += " (check the broker username and password, or the client certificate, and the broker's ACL)"
			return &describedError{msg, []error{ErrLoginRefused, err}}, true
		}
		return &describedError{msg, []error{err}}, false
	}
	var certErr *tls.CertificateVerificationError
	permanent = errors.As(err, &certErr)
	return &describedError{fmt.Sprintf("brokerclient: cannot reach the MQTT broker at %s: %s", s.url, s.netCause(err)), []error{err}}, permanent
}

// netCause says in a few words why a connection attempt failed.
func (s *settings) netCause(err error) string {
	var (
		certErr *tls.CertificateVerificationError
		opErr   *net.OpError
		dnsErr  *net.DNSError
		errno   syscall.Errno
	)
	switch {
	case errors.As(err, &certErr) && s.TLS != nil: // the caller's own check said why
		return fmt.Sprintf("its TLS certificate is refused: %v", certErr.Err)
	case errors.As(err, &certErr):
		hint := "set the broker's CA file"
		if s.CAFile != "" {
			hint = "check that " + s.CAFile + " holds the CA that signed it"
		}
		return fmt.Sprintf("its TLS certificate is not trusted (%v); %s", certErr.Err, hint)
	case errors.As(err, &opErr) && opErr.Op == "remote error": // a TLS alert
		return fmt.Sprintf("the broker ended the TLS handshake: %v%s", opErr.Err, s.hangUpHint())
	case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
		return "the broker hung up before answering" + s.hangUpHint()
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot resolve %s: %s", dnsErr.Name, dnsErr.Err)
	case errors.As(err, &errno):
		return errno.Error() // "connection refused", "no route to host"
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		return "no answer in time"
	}
	if inner := errors.Unwrap(err); inner != nil {
		err = inner // autopaho's "failed to connect to <url>: " repeats the URL
	}
	return err.Error()
}

// hangUpHint guesses why a broker would hang up on a new connection.
func (s *settings) hangUpHint() string {
	switch {
	case s.url.Scheme == "mqtt":
		return " (does it speak MQTT 5 without TLS on that port?)"
	case s.CertFile == "":
		return " (does it speak MQTT 5 with TLS on that port, or does it want a client certificate?)"
	}
	return " (does it speak MQTT 5 with TLS on that port, and accept this client certificate?)"
}

// loginReason: a CONNACK reason code that trying again will not change.
func loginReason(code byte) bool {
	switch code {
	case 0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C:
		return true
	}
	return false
}

// reasonNames are the MQTT 5 reason codes a broker may answer a CONNECT,
// PUBLISH or SUBSCRIBE with; each code from 0x80 means the same in every
// packet.
var reasonNames = map[byte]string{
	0x00: "success",
	0x10: "no matching subscribers",
	0x80: "unspecified error",
	0x81: "malformed packet",
	0x82: "protocol error",
	0x83: "implementation specific error",
	0x84: "unsupported protocol version (the broker must speak MQTT 5)",
	0x85: "client identifier not valid",
	0x86: "bad user name or password",
	0x87: "not authorized",
	0x88: "server unavailable",
	0x89: "server busy",
	0x8A: "banned",
	0x8C: "bad authentication method",
	0x8F: "topic filter invalid",
	0x90: "topic name invalid",
	0x91: "packet identifier in use",
	0x95: "packet too large",
	0x97: "quota exceeded",
	0x99: "payload format invalid",
	0x9A: "retain not supported",
	0x9B: "QoS not supported",
	0x9C: "use another server",
	0x9D: "server moved",
	0x9E: "shared subscriptions not supported",
	0x9F: "connection rate exceeded",
	0xA1: "subscription identifiers not supported",
	0xA2: "wildcard subscriptions not supported",
}

func reasonName(code byte) string {
	if name, ok := reasonNames[code]; ok {
		return fmt.Sprintf("%s (reason code 0x%02X)", name, code)
	}
	return fmt.Sprintf("reason code 0x%02X", code)
}
