package control

// Device MQTT credential.
//
// A device logs in to the embedded broker with the username
// "<fleet>/<device>" and a password it mints itself on every connection by
// signing the current time with its own enrolled ed25519 key:
//
//	v1.<unix seconds>.<base64url, unpadded, of ed25519(key, "porthole-mqtt-v1\n<fleet>\n<device>\n<unix seconds>")>
//
// The key never leaves the device and the server stores no extra secret: the
// broker checks the signature against the public key recorded at enrollment.
// The signed text starts with its own context string, so a signature made for
// the broker can be replayed nowhere else the device key is used.

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DevicePasswordSkew is how far a device password's timestamp may lie from
// the broker's clock, either way. Short, so a password captured where TLS is
// terminated before the broker (a load balancer, a proxy) is useless minutes
// later; not shorter, because the clocks of devices that sync rarely or only
// after boot drift by minutes.
const DevicePasswordSkew = 10 * time.Minute

const (
	devicePasswordVersion = "v1"
	devicePasswordContext = "porthole-mqtt-v1"
	// maxDevicePasswordLen bounds the work done on a password before it is
	// parsed: "v1." + at most 19 digits + "." + 86 base64 characters.
	maxDevicePasswordLen = 3 + 19 + 1 + 86
)

// ErrDevicePassword is in the chain of every error CheckDevicePassword
// returns.
var ErrDevicePassword = errors.New("control: device password refused")

// devicePasswordEncoding is unpadded base64url that rejects non-zero trailing
// bits, so one signature has exactly one spelling (decoded by decodeExact,
// which also refuses line breaks).
var devicePasswordEncoding = base64.RawURLEncoding.Strict()

// DeviceUsername is the MQTT username (and client id) of a device,
// "<fleet>/<device>". It fails if fleet or device is not a [ValidName].
func DeviceUsername(fleet, device string) (string, error) {
	if !ValidName(fleet) || !ValidName(device) {
		return "", fmt.Errorf("control: %q/%q is not a fleet and device name (1 to 63 of a-z, 0-9 and -)", fleet, device)
	}
	return fleet + "/" + device, nil
}

// ParseDeviceUsername splits a device's MQTT username into fleet and device;
// ok is false unless it is exactly two [ValidName]s joined by '/'.
func ParseDeviceUsername(username string) (fleet, device string, ok bool) {
	fleet, device, ok = strings.Cut(username, "/")
	if !ok || !ValidName(fleet) || !ValidName(device) {
		return "", "", false
	}
	return fleet, device, true
}

// DevicePassword mints the MQTT password of device in fleet, valid for
// [DevicePasswordSkew] around now. The device makes a new one for every
// connection. It does not check the names; CheckDevicePassword refuses a
// password made for names that are not valid.
func DevicePassword(priv ed25519.PrivateKey, fleet, device string, now time.Time) string {
	unix := strconv.FormatInt(now.Unix(), 10)
	sig := ed25519.Sign(priv, devicePasswordMessage(fleet, device, unix))
	return devicePasswordVersion + "." + unix + "." + devicePasswordEncoding.EncodeToString(sig)
}

// CheckDevicePassword checks that password was minted by the holder of pub's
// private key for exactly this fleet and device, within
// [DevicePasswordSkew] of now. Every error wraps [ErrDevicePassword] and says
// which check failed, for the log; the device itself should only learn that
// it was refused.
func CheckDevicePassword(pub ed25519.PublicKey, fleet, device, password string, now time.Time) error {
	if len(pub) != ed25519.PublicKeySize {
		// ed25519.Verify would panic on a key of the wrong size.
		return fmt.Errorf("%w: the device's enrolled key is not an ed25519 public key", ErrDevicePassword)
	}
	if !ValidName(fleet) || !ValidName(device) {
		return fmt.Errorf("%w: %q/%q is not a fleet and device name", ErrDevicePassword, fleet, device)
	}
	unix, ts, sig, err := parseDevicePassword(password)
	if err != nil {
		return err
	}
	if d := now.Sub(ts); d > DevicePasswordSkew || d < -DevicePasswordSkew {
		return fmt.Errorf("%w: its time %s is %s away from the server's clock (at most %s allowed); check the device's clock",
			ErrDevicePassword, ts.UTC().Format(time.RFC3339), d.Abs().Round(time.Second), DevicePasswordSkew)
	}
	if !ed25519.Verify(pub, devicePasswordMessage(fleet, device, unix), sig) {
		return fmt.Errorf("%w: the signature does not match the device's enrolled key", ErrDevicePassword)
	}
	return nil
}

// parseDevicePassword splits "v1.<unix>.<sig>", accepting only the one
// spelling DevicePassword produces.
func parseDevicePassword(password string) (unix string, ts time.Time, sig []byte, err error) {
	malformed := func(why string) error {
		return fmt.Errorf("%w: it is malformed (%s)", ErrDevicePassword, why)
	}
	if len(password) > maxDevicePasswordLen {
		return "", time.Time{}, nil, malformed("too long")
	}
	parts := strings.Split(password, ".")
	if len(parts) != 3 {
		return "", time.Time{}, nil, malformed("not three dot-separated parts")
	}
	if parts[0] != devicePasswordVersion {
		return "", time.Time{}, nil, malformed("unknown version")
	}
	unix = parts[1]
	secs, perr := strconv.ParseInt(unix, 10, 64)
	if perr != nil || secs < 0 || strconv.FormatInt(secs, 10) != unix {
		// The signed text holds the digits as sent: insist on the canonical
		// form so "+17…" or "017…" cannot stand for the same time.
		return "", time.Time{}, nil, malformed("bad time")
	}
	sig, derr := decodeExact(devicePasswordEncoding, parts[2])
	if derr != nil || len(sig) != ed25519.SignatureSize {
		return "", time.Time{}, nil, malformed("bad signature encoding")
	}
	return unix, time.Unix(secs, 0), sig, nil
}

func devicePasswordMessage(fleet, device, unix string) []byte {
	return []byte(devicePasswordContext + "\n" + fleet + "\n" + device + "\n" + unix)
}
