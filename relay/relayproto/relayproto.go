// Package relayproto is the wire format of the relay's second protocol
// ("data path v2"), shared by the relay (package relay), the device's agent
// and the engineer's CLI. It holds the messages, their framing, the proof of
// identity a client sends, and the stream multiplexer's settings; it links
// neither the server nor the agent.
//
// # Protocol flow
//
// A client reaches the relay by TLS 1.3 on the server's one port, with the
// ALPN protocol [ALPN] (or by a WebSocket at [WebSocketPath] on the same
// port, for networks that pass only HTTP; the bytes inside are the same).
// The client checks the server's certificate as it does for the API (the
// pinned fingerprint). Then:
//
//  1. The client sends a [Hello] in an [Envelope]: who it is (a device by
//     fleet and name, or an engineer by the session certificate it holds),
//     signed with its key over the TLS session's exported keying material
//     ([Binding]), so a hello proves the key's holder is at this end of this
//     very TLS connection: it cannot be replayed on another connection, nor
//     relayed by a compromised middle, and needs no clock.
//
//     A browser cannot read its TLS connection's keying material, so it
//     asks for the WebSocket subprotocol [BrowserSubprotocol] instead: the
//     relay then sends a fresh random [Challenge] first, and the hello is
//     signed over it ([ChallengeBinding]) in place of the keying material.
//     A captured hello is then useless on any other connection, whose
//     challenge differs; only engineers may say hello this way.
//
//  2. The relay checks the signature and what the identity may do, exactly as
//     the SSH relay does (a device by its enrolled key; an engineer by a
//     session certificate from the user CA for an open session on the device
//     it names), and answers a [Reply]. Nothing is spliced before this.
//
//  3. A device's connection then carries a yamux session ([MuxConfig]); the
//     relay is its yamux client, the device its server. The device opens a
//     stream per session it serves and writes a [Register] frame; the relay
//     answers a [Reply] and the registration lasts while that stream is open
//     (either side closing it ends it). For each engineer the relay opens a
//     stream to the device and writes a [StreamHeader] (the session and the
//     engineer's address); the device answers a [Reply] and, if it took the
//     stream, serves its embedded SSH server on the rest of it.
//
//  4. An engineer's connection carries one stream. The client may send its
//     SSH bytes right after its hello, without waiting: the relay holds them
//     until the device has registered the session (the device is being woken
//     meanwhile) and has taken a stream for it, then sends its [Reply] and
//     splices the two, reading nothing of what passes.
//
// Frames are a two-byte big-endian length and that many bytes of JSON, at
// most [MaxFrame].
package relayproto

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/ssh"
)

// ALPN is the TLS application protocol of the relay's second protocol.
const ALPN = "porthole-relay/2"

// WebSocketPath is where the server takes the same protocol over a
// WebSocket (binary messages), on the API's port.
const WebSocketPath = "/relay/v2"

// Version is the Hello's "v".
const Version = 2

// Roles a Hello may claim.
const (
	RoleDevice   = "device"
	RoleEngineer = "engineer"
)

// MaxFrame is the longest frame either side accepts.
const MaxFrame = 16 << 10

// exporterLabel names the keying material a hello is bound to (RFC 8446
// §7.5).
const exporterLabel = "EXPORTER-porthole-relay-hello-v2"

// signedPrefix starts every signed hello, so that the signature cannot be
// taken for one made for another purpose with the same key.
const signedPrefix = "porthole relay hello v2\x00"

// BrowserSubprotocol is the WebSocket subprotocol, at [WebSocketPath], of
// an engineer's client that cannot read its TLS connection's keying
// material (the web console's terminal, in a browser): the relay sends a
// [Challenge] first and the hello is bound to it ([ChallengeBinding]).
// Only engineers may use it. (A browser takes no "/" in a subprotocol's
// name, which must be an HTTP token.)
const BrowserSubprotocol = "porthole-relay-browser.v2"

// ChallengeSize is the length of a Challenge's random bytes.
const ChallengeSize = 32

// challengeLabel starts the binding of a hello signed over a challenge, so
// that it can never be taken for the keying material of a TLS connection
// (always 32 bytes) nor a challenge for another purpose.
const challengeLabel = "porthole relay browser challenge v2\x00"

// Challenge is the relay's first frame on a BrowserSubprotocol connection:
// fresh random bytes the client's hello is signed over.
type Challenge struct {
	Challenge []byte `json:"challenge"`
}

// NewChallenge makes a fresh challenge.
func NewChallenge() (Challenge, error) {
	b := make([]byte, ChallengeSize)
	if _, err := rand.Read(b); err != nil {
		return Challenge{}, err
	}
	return Challenge{Challenge: b}, nil
}

// ChallengeBinding is what a hello answering ch is signed over, in place
// of a TLS connection's Binding: a label of its own, then the challenge.
// (The session the hello is for is in the signed payload, its
// certificate.)
func ChallengeBinding(ch Challenge) ([]byte, error) {
	if len(ch.Challenge) != ChallengeSize {
		return nil, fmt.Errorf("relayproto: a challenge of %d bytes; want %d", len(ch.Challenge), ChallengeSize)
	}
	return append([]byte(challengeLabel), ch.Challenge...), nil
}

// Hello says who a client is. It travels signed, in an Envelope.
type Hello struct {
	V    int    `json:"v"`    // Version
	Role string `json:"role"` // RoleDevice or RoleEngineer
	// Fleet and Device name a device logging in as itself.
	Fleet  string `json:"fleet,omitempty"`
	Device string `json:"device,omitempty"`
	// Cert is an engineer's session certificate, in SSH wire form.
	Cert []byte `json:"cert,omitempty"`
}

// Envelope carries a Hello and the signature over it: Sig is an SSH
// signature (wire form) by the device's key or the certificate's key over
// signedPrefix, the connection's Binding and Payload.
type Envelope struct {
	Payload []byte `json:"payload"` // the Hello's JSON
	Sig     []byte `json:"sig"`
}

// Reply answers a hello, a registration or a stream.
type Reply struct {
	OK bool `json:"ok"`
	// Error says why not, in words for a person.
	Error string `json:"error,omitempty"`
	// Code is one of the Code* values, for a program to act on.
	Code string `json:"code,omitempty"`
}

// Reply codes.
const (
	CodeRefused     = "refused"     // not allowed; trying again will not help
	CodeUnavailable = "unavailable" // the relay could not decide or reach the device now; try again
	CodeClosed      = "closed"      // the session is closed or has ended
	CodeNoDevice    = "no_device"   // the device did not come for the session in time
)

// ReplyError is a Reply that said no, as an error.
type ReplyError struct{ Reply }

func (e *ReplyError) Error() string { return e.Reply.Error }

// Err is nil for an OK reply and a *ReplyError otherwise.
func (r Reply) Err() error {
	if r.OK {
		return nil
	}
	if r.Error == "" {
		r.Error = "refused without a reason"
	}
	return &ReplyError{r}
}

// Register is a device's first frame on a stream it opens: it serves
// Session, for as long as the stream is open.
type Register struct {
	Session string `json:"register"`
}

// StreamHeader is the relay's first frame on a stream it opens to a device:
// an engineer for Session, from the address From as the relay sees it.
type StreamHeader struct {
	Session string `json:"session"`
	From    string `json:"from,omitempty"`
}

// WriteFrame writes v as one frame.
func WriteFrame(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > MaxFrame {
		return fmt.Errorf("relayproto: frame of %d bytes is longer than %d", len(b), MaxFrame)
	}
	buf := make([]byte, 2+len(b))
	binary.BigEndian.PutUint16(buf, uint16(len(b)))
	copy(buf[2:], b)
	_, err = w.Write(buf)
	return err
}

// ReadFrame reads one frame into v. It reads nothing past the frame, so
// that what follows is left for the caller.
func ReadFrame(r io.Reader, v any) error {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return err
	}
	size := int(binary.BigEndian.Uint16(n[:]))
	if size > MaxFrame {
		return fmt.Errorf("relayproto: frame of %d bytes is longer than %d", size, MaxFrame)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("relayproto: malformed frame: %w", err)
	}
	return nil
}

func signedData(binding, payload []byte) []byte {
	d := make([]byte, 0, len(signedPrefix)+len(binding)+len(payload))
	d = append(d, signedPrefix...)
	d = append(d, binding...)
	return append(d, payload...)
}

// Sign makes the envelope of h, signed by signer for the connection whose
// Binding is binding.
func Sign(signer ssh.Signer, binding []byte, h Hello) (Envelope, error) {
	h.V = Version
	payload, err := json.Marshal(h)
	if err != nil {
		return Envelope{}, err
	}
	sig, err := signer.Sign(rand.Reader, signedData(binding, payload))
	if err != nil {
		return Envelope{}, fmt.Errorf("relayproto: signing the hello: %w", err)
	}
	return Envelope{Payload: payload, Sig: ssh.Marshal(sig)}, nil
}

// Open decodes an envelope's hello without checking its signature: the
// relay must learn who claims to have signed it before it can check.
func (e Envelope) Open() (Hello, error) {
	var h Hello
	if err := json.Unmarshal(e.Payload, &h); err != nil {
		return Hello{}, fmt.Errorf("relayproto: malformed hello: %w", err)
	}
	if h.V != Version {
		return Hello{}, fmt.Errorf("relayproto: hello version %d; this relay speaks %d", h.V, Version)
	}
	return h, nil
}

// Verify checks that the envelope was signed by key for the connection
// whose Binding is binding.
func (e Envelope) Verify(key ssh.PublicKey, binding []byte) error {
	var sig ssh.Signature
	if err := ssh.Unmarshal(e.Sig, &sig); err != nil {
		return errors.New("relayproto: malformed signature")
	}
	switch sig.Format {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512:
	default:
		return fmt.Errorf("relayproto: signature format %q is not accepted", sig.Format)
	}
	if err := key.Verify(signedData(binding, e.Payload), &sig); err != nil {
		return errors.New("relayproto: the hello's signature does not verify")
	}
	return nil
}
