package control

// Device API credential.
//
// A device's own calls to the HTTP API (its support requests, the owner's
// link, its recording uploads) carry a credential made for that one
// request, separate from the MQTT password:
//
//	Authorization: Device <fleet>/<device> r1.<unix seconds>.<nonce>.<signature>
//
// where the signature is ed25519 with the device's enrolled key over
//
//	porthole-api-v1\n<fleet>\n<device>\n<METHOD>\n<request URI>\n<body SHA-256, hex>\n<unix seconds>\n<nonce>
//
// The request URI is the request target as sent (escaped path and query),
// and the body's digest travels in a Content-Digest header (RFC 9530,
// sha-256), which the server holds the body to: a credential is good for
// one method on one path with one query and one body, even through a
// party that ends TLS before the server. The
// nonce is 16 random bytes (base64url, unpadded): the server remembers
// every nonce it accepted until the credential's time is past
// [DeviceRequestSkew], so a captured credential cannot be used twice.
//
// The MQTT password's signed text starts with another context string
// ("porthole-mqtt-v1") and has another shape, so what a device sends to a
// broker (which may be someone else's, see broker.url) is worth nothing to
// the API, and a request credential is worth nothing to a broker.

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DeviceRequestSkew is how far a request credential's time may lie from the
// server's clock, either way. Short, because the server must remember each
// nonce this long on both sides of now; a device whose clock is further off
// learns the server's time from the refusal (apiclient corrects for it and
// tries again once), so drift costs one round trip, not an outage.
const DeviceRequestSkew = 2 * time.Minute

const (
	deviceRequestVersion = "r1"
	deviceRequestContext = "porthole-api-v1"
	deviceNonceLen       = 16
	// maxDeviceRequestLen bounds the work done on a credential before it
	// is parsed: "r1." + at most 19 digits + "." + 22 + "." + 86.
	maxDeviceRequestLen = 3 + 19 + 1 + 22 + 1 + 86
	// maxRequestURILen bounds the signed request target; the API's routes
	// are far shorter.
	maxRequestURILen = 8 << 10
)

// ErrDeviceRequest is in the chain of every error CheckDeviceRequest
// returns.
var ErrDeviceRequest = errors.New("control: device request credential refused")

// ErrDeviceClock is in the chain of CheckDeviceRequest's error when the
// signature is good but made at a time too far from the server's: the
// device's clock is off (or the credential is an old one replayed). Only
// the holder of the key can cause it, so the server may say so.
var ErrDeviceClock = errors.New("control: the device's clock is too far from the server's")

// DeviceRequest is a checked request credential: who signed it, when, and
// the nonce the server must not accept again before Expires.
type DeviceRequest struct {
	Nonce   string
	At      time.Time
	Expires time.Time // At + DeviceRequestSkew: after this no clock accepts it
}

// SignDeviceRequest makes the credential for one request of device in fleet:
// method and requestURI (the escaped path and query as sent, what
// http.Request.URL.RequestURI returns) with a body whose SHA-256 is body
// (BodyDigest), at now. It does not check the names; CheckDeviceRequest
// refuses a credential made for names that are not valid.
func SignDeviceRequest(priv ed25519.PrivateKey, fleet, device, method, requestURI string, body [sha256.Size]byte, now time.Time) string {
	var n [deviceNonceLen]byte
	rand.Read(n[:]) // never fails (crypto/rand panics if the system cannot give randomness)
	return signDeviceRequest(priv, fleet, device, method, requestURI, body, now, devicePasswordEncoding.EncodeToString(n[:]))
}

// BodyDigest is the SHA-256 of a request body, as a device request
// credential binds it (nil: an empty body).
func BodyDigest(body []byte) [sha256.Size]byte { return sha256.Sum256(body) }

// signDeviceRequest is SignDeviceRequest with the nonce given.
func signDeviceRequest(priv ed25519.PrivateKey, fleet, device, method, requestURI string, body [sha256.Size]byte, now time.Time, nonce string) string {
	unix := strconv.FormatInt(now.Unix(), 10)
	sig := ed25519.Sign(priv, deviceRequestMessage(fleet, device, method, requestURI, body, unix, nonce))
	return deviceRequestVersion + "." + unix + "." + nonce + "." + devicePasswordEncoding.EncodeToString(sig)
}

// CheckDeviceRequest checks that cred was made by the holder of pub's
// private key for exactly this fleet, device, method, requestURI and body
// digest, within [DeviceRequestSkew] of now. It does not know which nonces
// were used, nor the body: the caller must refuse a DeviceRequest whose
// Nonce it has accepted before, and a body whose digest is not body.
// Every error wraps [ErrDeviceRequest]; a good signature at a bad time
// also wraps [ErrDeviceClock], and then the DeviceRequest says when it was
// made.
func CheckDeviceRequest(pub ed25519.PublicKey, fleet, device, method, requestURI string, body [sha256.Size]byte, cred string, now time.Time) (DeviceRequest, error) {
	if len(pub) != ed25519.PublicKeySize {
		return DeviceRequest{}, fmt.Errorf("%w: the device's enrolled key is not an ed25519 public key", ErrDeviceRequest)
	}
	if !ValidName(fleet) || !ValidName(device) {
		return DeviceRequest{}, fmt.Errorf("%w: %q/%q is not a fleet and device name", ErrDeviceRequest, fleet, device)
	}
	if len(requestURI) > maxRequestURILen || method == "" || strings.ContainsAny(method+requestURI, "\n") {
		return DeviceRequest{}, fmt.Errorf("%w: the request is not one a credential can be made for", ErrDeviceRequest)
	}
	unix, ts, nonce, sig, err := parseDeviceRequest(cred)
	if err != nil {
		return DeviceRequest{}, err
	}
	if !ed25519.Verify(pub, deviceRequestMessage(fleet, device, method, requestURI, body, unix, nonce), sig) {
		return DeviceRequest{}, fmt.Errorf("%w: the signature does not match the device's enrolled key and this request", ErrDeviceRequest)
	}
	req := DeviceRequest{Nonce: nonce, At: ts, Expires: ts.Add(DeviceRequestSkew)}
	if d := now.Sub(ts); d > DeviceRequestSkew || d < -DeviceRequestSkew {
		return req, fmt.Errorf("%w: %w: it was made at %s, %s away from the server's clock (at most %s allowed)",
			ErrDeviceRequest, ErrDeviceClock, ts.UTC().Format(time.RFC3339), d.Abs().Round(time.Second), DeviceRequestSkew)
	}
	return req, nil
}

// parseDeviceRequest splits "r1.<unix>.<nonce>.<sig>", accepting only the
// one spelling SignDeviceRequest produces.
func parseDeviceRequest(cred string) (unix string, ts time.Time, nonce string, sig []byte, err error) {
	malformed := func(why string) error {
		return fmt.Errorf("%w: it is malformed (%s)", ErrDeviceRequest, why)
	}
	if len(cred) > maxDeviceRequestLen {
		return "", time.Time{}, "", nil, malformed("too long")
	}
	parts := strings.Split(cred, ".")
	if len(parts) != 4 {
		return "", time.Time{}, "", nil, malformed("not four dot-separated parts")
	}
	if parts[0] != deviceRequestVersion {
		return "", time.Time{}, "", nil, malformed("unknown version")
	}
	unix, nonce = parts[1], parts[2]
	secs, perr := strconv.ParseInt(unix, 10, 64)
	if perr != nil || secs < 0 || strconv.FormatInt(secs, 10) != unix {
		return "", time.Time{}, "", nil, malformed("bad time")
	}
	if n, nerr := decodeExact(devicePasswordEncoding, nonce); nerr != nil || len(n) != deviceNonceLen {
		return "", time.Time{}, "", nil, malformed("bad nonce")
	}
	sig, derr := decodeExact(devicePasswordEncoding, parts[3])
	if derr != nil || len(sig) != ed25519.SignatureSize {
		return "", time.Time{}, "", nil, malformed("bad signature encoding")
	}
	return unix, time.Unix(secs, 0), nonce, sig, nil
}

func deviceRequestMessage(fleet, device, method, requestURI string, body [sha256.Size]byte, unix, nonce string) []byte {
	return []byte(deviceRequestContext + "\n" + fleet + "\n" + device + "\n" + method + "\n" + requestURI + "\n" +
		hex.EncodeToString(body[:]) + "\n" + unix + "\n" + nonce)
}

// ContentDigestHeader carries a device request's body digest (RFC 9530).
const ContentDigestHeader = "Content-Digest"

// FormatContentDigest writes digest as the Content-Digest header's value:
// "sha-256=:<base64>:".
func FormatContentDigest(digest [sha256.Size]byte) string {
	return "sha-256=:" + base64.StdEncoding.EncodeToString(digest[:]) + ":"
}

// ParseContentDigest reads a Content-Digest value FormatContentDigest
// wrote; ok is false for anything else (another algorithm, several, a bad
// encoding).
func ParseContentDigest(v string) (digest [sha256.Size]byte, ok bool) {
	rest, hasPrefix := strings.CutPrefix(v, "sha-256=:")
	enc, hasSuffix := strings.CutSuffix(rest, ":")
	if !hasPrefix || !hasSuffix || len(enc) > 64 {
		return digest, false
	}
	b, err := decodeExact(b64, enc)
	if err != nil || len(b) != sha256.Size {
		return digest, false
	}
	copy(digest[:], b)
	return digest, true
}
