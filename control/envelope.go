package control

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxEnvelopeSize is the largest envelope Verify reads; a command is a few
// hundred bytes.
const MaxEnvelopeSize = 16 << 10

// nonceBytes is the nonce's random length: 128 bits.
const nonceBytes = 16

// envelope is the message on a cmd topic. Payload is the command JSON and
// Sig the ed25519 signature over exactly those bytes, both in standard
// base64.
type envelope struct {
	Payload string `json:"payload"`
	Sig     string `json:"sig"`
}

// b64 rejects non-zero padding bits, so each byte string has one encoding
// (decode it with decodeExact, which also refuses line breaks).
var b64 = base64.StdEncoding.Strict()

// decodeExact decodes s, refusing any spelling enc would not write. Strict
// encodings refuse stray padding bits, but Go's decoders skip '\r' and '\n'
// anywhere in the input, so "e3\r\n0=" would pass for "e30=".
func decodeExact(enc *base64.Encoding, s string) ([]byte, error) {
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if enc.EncodedLen(len(b)) != len(s) {
		return nil, errors.New("line breaks in base64")
	}
	return b, nil
}

// Sign makes the envelope for cmd, signed with the control key priv. It sets
// V to Version when zero and a random 128-bit Nonce when empty, and refuses
// a command the agent would reject whatever its clock (unknown type, bad
// names or fields, missing not_after).
func Sign(priv ed25519.PrivateKey, cmd Command) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("control: sign: control key has %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	if cmd.V == 0 {
		cmd.V = Version
	}
	if cmd.Nonce == "" {
		var n [nonceBytes]byte
		if _, err := rand.Read(n[:]); err != nil {
			return nil, fmt.Errorf("control: sign: nonce: %w", err)
		}
		cmd.Nonce = base64.RawURLEncoding.EncodeToString(n[:])
	}
	if err := cmd.checkSignable(); err != nil {
		return nil, fmt.Errorf("control: sign: %w", err)
	}
	payload, err := json.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("control: sign: encode command: %w", err)
	}
	env, err := json.Marshal(envelope{
		Payload: b64.EncodeToString(payload),
		Sig:     b64.EncodeToString(ed25519.Sign(priv, payload)),
	})
	if err != nil {
		return nil, fmt.Errorf("control: sign: encode envelope: %w", err)
	}
	if len(env) > MaxEnvelopeSize {
		return nil, fmt.Errorf("control: sign: envelope of %d bytes exceeds %d", len(env), MaxEnvelopeSize)
	}
	return env, nil
}

// checkSignable is what Verify checks of a command apart from the
// signature, the receiver and the time.
func (c *Command) checkSignable() error {
	if c.V != Version {
		return fmt.Errorf("%w: version %d, want %d", errBadField, c.V, Version)
	}
	if !knownType(c.Type) {
		return fmt.Errorf("%w: unknown type %q", errBadField, c.Type)
	}
	if !ValidName(c.Fleet) || !ValidName(c.Device) {
		return fmt.Errorf("%w: fleet %q or device %q is not a name (1 to 63 of a-z, 0-9 and -)", errBadField, c.Fleet, c.Device)
	}
	return c.checkFields()
}

// openEnvelope decodes an envelope strictly and returns the payload bytes
// and the signature; any error is a ReasonMalformed rejection.
func openEnvelope(data []byte) (payload, sig []byte, err error) {
	var env envelope
	if err := decodeStrict(data, &env); err != nil {
		return nil, nil, reject(ReasonMalformed, fmt.Errorf("envelope: %w", err))
	}
	if env.Payload == "" || env.Sig == "" {
		return nil, nil, reject(ReasonMalformed, errors.New("envelope: payload or sig missing"))
	}
	if payload, err = decodeExact(b64, env.Payload); err != nil {
		return nil, nil, reject(ReasonMalformed, fmt.Errorf("envelope: payload: %w", err))
	}
	if sig, err = decodeExact(b64, env.Sig); err != nil {
		return nil, nil, reject(ReasonMalformed, fmt.Errorf("envelope: sig: %w", err))
	}
	return payload, sig, nil
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
