package control

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Verifier checks commands on one device: signed by the control key,
// addressed to this device, in time, and never seen before. It is safe for
// concurrent use when its NonceStore is.
type Verifier struct {
	key    ed25519.PublicKey
	fleet  string
	device string
	nonces NonceStore
}

// NewVerifier makes the verifier of the device named device in fleet, which
// trusts commands signed by key and remembers their nonces in nonces.
func NewVerifier(key ed25519.PublicKey, fleet, device string, nonces NonceStore) (*Verifier, error) {
	if len(key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("control: control public key has %d bytes, want %d", len(key), ed25519.PublicKeySize)
	}
	if !ValidName(fleet) || !ValidName(device) {
		return nil, fmt.Errorf("control: fleet %q or device %q is not a name (1 to 63 of a-z, 0-9 and -)", fleet, device)
	}
	if nonces == nil {
		return nil, errors.New("control: a verifier needs a nonce store")
	}
	return &Verifier{key: key, fleet: fleet, device: device, nonces: nonces}, nil
}

// Verify checks envelope at time now and returns its command. The checks run
// in this order, the first failure deciding the *RejectError's reason: size,
// envelope shape, signature, version, type, fields, fleet, device, expiry,
// how far ahead not_after lies, and last the nonce, which is recorded only
// when everything else has passed, so a rejected command never uses up a
// nonce.
func (v *Verifier) Verify(envelope []byte, now time.Time) (*Command, error) {
	if len(envelope) > MaxEnvelopeSize {
		return nil, reject(ReasonTooLarge, fmt.Errorf("%d bytes, limit %d", len(envelope), MaxEnvelopeSize))
	}
	payload, sig, err := openEnvelope(envelope)
	if err != nil {
		return nil, err
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(v.key, payload, sig) {
		return nil, reject(ReasonBadSignature, nil)
	}
	cmd, err := parseCommand(payload)
	if err != nil {
		return nil, err
	}
	if err := v.checkAddressAndTime(cmd, now); err != nil {
		return nil, err
	}
	fresh, err := v.nonces.Remember(cmd.Nonce, cmd.Expiry().Add(ClockSkew), now)
	if err != nil {
		return nil, reject(ReasonInternal, fmt.Errorf("nonce store: %w", err))
	}
	if !fresh {
		return nil, reject(ReasonReplayed, nil)
	}
	return cmd, nil
}

// parseCommand decodes signed payload bytes. The version is read first, on
// its own, so a future format is reported as wrong_version rather than
// malformed.
func parseCommand(payload []byte) (*Command, error) {
	var probe struct {
		V int `json:"v"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, reject(ReasonMalformed, fmt.Errorf("command: %w", err))
	}
	if probe.V != Version {
		return nil, reject(ReasonWrongVersion, fmt.Errorf("version %d, want %d", probe.V, Version))
	}
	cmd := new(Command)
	if err := decodeStrict(payload, cmd); err != nil {
		return nil, reject(ReasonMalformed, fmt.Errorf("command: %w", err))
	}
	if !knownType(cmd.Type) {
		return nil, reject(ReasonUnknownType, fmt.Errorf("type %q", cmd.Type))
	}
	if err := cmd.checkFields(); err != nil {
		return nil, reject(ReasonMalformed, err)
	}
	return cmd, nil
}

func (v *Verifier) checkAddressAndTime(cmd *Command, now time.Time) error {
	switch {
	case cmd.Fleet != v.fleet:
		return reject(ReasonWrongFleet, fmt.Errorf("fleet %q, this device is in %q", cmd.Fleet, v.fleet))
	case cmd.Device != v.device:
		return reject(ReasonWrongDevice, fmt.Errorf("device %q, this device is %q", cmd.Device, v.device))
	case now.After(cmd.Expiry().Add(ClockSkew)):
		return reject(ReasonExpired, fmt.Errorf("expired at %s", cmd.Expiry().UTC().Format(time.RFC3339)))
	case cmd.Expiry().After(now.Add(MaxValidity + ClockSkew)):
		return reject(ReasonTooFarAhead, fmt.Errorf("valid until %s, more than %v ahead", cmd.Expiry().UTC().Format(time.RFC3339), MaxValidity))
	}
	return nil
}
