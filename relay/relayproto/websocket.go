package relayproto

import (
	"fmt"
	"net"

	"golang.org/x/crypto/ssh"
)

// MQTTWebSocketPath is where the server's embedded broker takes MQTT over a
// WebSocket (subprotocol "mqtt").
const MQTTWebSocketPath = "/mqtt"

// SendChallengeHello reads the relay's Challenge on c (a BrowserSubprotocol
// connection) and answers with h, signed by signer over it. It does not
// wait for the relay's reply.
func SendChallengeHello(c net.Conn, signer ssh.Signer, h Hello) error {
	var ch Challenge
	if err := ReadFrame(c, &ch); err != nil {
		return fmt.Errorf("relayproto: reading the relay's challenge: %w", err)
	}
	binding, err := ChallengeBinding(ch)
	if err != nil {
		return err
	}
	return sendSigned(c, signer, binding, h)
}

// sendSigned sends h's envelope, signed by signer for binding, on c.
func sendSigned(c net.Conn, signer ssh.Signer, binding []byte, h Hello) error {
	env, err := Sign(signer, binding, h)
	if err != nil {
		return err
	}
	return WriteFrame(c, env)
}

// NewEngineerConn is c, an engineer's connection on which a hello was
// sent, with the relay's reply still to read (see NewConn); its writes are
// cut as an engineer's are.
func NewEngineerConn(c net.Conn) *Conn {
	ec := NewConn(c)
	ec.chunked = true
	return ec
}
