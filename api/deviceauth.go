package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/store"
)

// authenticateDevice finds the calling device from "Authorization: Device
// <fleet>/<device> <credential>", the credential made for this one request
// with the device's enrolled key (control.SignDeviceRequest) and never
// accepted twice. A device that does not exist and a bad credential get
// the same answer, so the API tells no one which device names exist. The
// device's MQTT password is refused here: it is sent to the broker, which
// may be an external one the server does not control.
func (c *call) authenticateDevice() error {
	refused := unauthenticated("this request needs a device's signed credential")
	scheme, rest, _ := strings.Cut(c.r.Header.Get("Authorization"), " ")
	who, cred, _ := strings.Cut(strings.TrimSpace(rest), " ")
	fleet, name, ok := strings.Cut(who, "/")
	if !strings.EqualFold(scheme, apitype.DeviceAuthScheme) || !ok || cred == "" ||
		!control.ValidName(fleet) || !control.ValidName(name) {
		return refused
	}
	ds, err := c.s.store.ListDevices(c.ctx, store.DeviceFilter{FleetName: fleet, Name: name})
	if err != nil {
		return fmt.Errorf("looking up device %s/%s: %w", fleet, name, err)
	}
	if len(ds) != 1 {
		return refused
	}
	key, err := control.ParseDeviceKey(ds[0].PublicKey)
	if err != nil {
		return fmt.Errorf("device %s: %w", ds[0].ID, err)
	}
	log := c.s.logger.With("request_id", requestID(c.ctx), "fleet", fleet, "device", name)
	now := c.s.now()
	digest, digestOK := control.ParseContentDigest(c.r.Header.Get(control.ContentDigestHeader))
	req, err := control.CheckDeviceRequest(key, fleet, name, c.r.Method, c.r.RequestURI, digest, cred, now)
	switch {
	case err == nil && !digestOK:
		return refused // a good signature over no digest: only a zero body digest could make one
	case err == nil:
	case control.CheckDevicePassword(key, fleet, name, cred, now) == nil:
		// A good MQTT password: an agent from before request credentials,
		// or someone who saw what the device sent its broker.
		log.Warn("device credential refused: an MQTT password was sent to the API")
		return unauthenticated("the API no longer accepts a device's MQTT password; upgrade porthole-agent on %s/%s", fleet, name)
	case errors.Is(err, control.ErrDeviceClock):
		// Only the key's holder can make a signature at a wrong time, so
		// it may learn the server's clock (the Date header): apiclient
		// corrects its own by it and tries once more.
		log.Warn("device credential refused", "err", err)
		ahead := "behind"
		if req.At.After(now) {
			ahead = "ahead of"
		}
		he := unauthenticated("%s/%s's clock is %s %s the server's (at most %s allowed): set it right, for example with NTP",
			fleet, name, req.At.Sub(now).Abs().Round(time.Second), ahead, control.DeviceRequestSkew)
		he.header = http.Header{"Www-Authenticate": {apitype.DeviceAuthScheme + ` error="clock_skew"`}}
		return he
	case errors.Is(err, control.ErrDeviceRequest):
		log.Warn("device credential refused", "err", err)
		return refused
	default:
		return err
	}
	fresh, err := c.s.deviceNonces.RememberFor(ds[0].ID, req.Nonce, req.Expires, now)
	if errors.Is(err, control.ErrNonceQuota) {
		log.Warn("device request refused: the device signs too many requests", "err", err)
		return tooMany(fmt.Sprintf("%s/%s sends too many requests", fleet, name), time.Minute)
	}
	if err != nil {
		log.Error("device request nonce not remembered", "err", err)
		he := errorf(http.StatusServiceUnavailable, apitype.CodeUnavailable, "the server cannot take more device requests just now; try again in a minute")
		he.header = http.Header{"Retry-After": {"60"}}
		return he
	}
	if !fresh {
		log.Warn("device credential refused: it was used before (a replayed request)")
		return refused
	}
	// The body is held to the digest the device signed: whoever reads it
	// gets an error at its end if it is another (see digestBody).
	c.r.Body = &digestBody{r: c.r.Body, h: sha256.New(), want: digest}
	c.dev = ds[0]
	c.ctx = audit.WithActor(c.ctx, audit.Device(c.dev.ID, fleet, name)) // the actor of what it records
	return nil
}

// errBodyDigest: a device's request body is not the one its credential
// signed (someone between changed it).
var errBodyDigest = unauthenticated("the request body is not the one the device's credential was made for")

// digestBody reads a device's request body and, at its end, fails with
// errBodyDigest unless what was read has the digest the device signed.
// Every handler reads a body to its end before it acts on it (decodeBody,
// the recording upload), so a changed body is refused, not acted on.
type digestBody struct {
	r    io.ReadCloser
	h    hash.Hash
	want [sha256.Size]byte
}

func (b *digestBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	if errors.Is(err, io.EOF) && !bytes.Equal(b.h.Sum(nil), b.want[:]) {
		return n, errBodyDigest
	}
	return n, err
}

func (b *digestBody) Close() error { return b.r.Close() }

// whoAmI is GET /api/v1/device: the calling device as the server knows it,
// so that `porthole-agent status` can show that the server still knows it.
func (s *Server) whoAmI(c *call, _ *none) (apitype.Device, error) {
	return apiDevice(c.dev), nil
}

// StoreNonces keeps the devices' request nonces in st, the database every
// API node shares (Config.DeviceNonces), DefaultMaxNoncesPerDevice of one
// device at most: with several nodes behind one address, a credential
// captured on its way to one node is refused by the others.
func StoreNonces(st store.DeviceNonces) DeviceNonceStore { return storeNonces{st} }

type storeNonces struct{ st store.DeviceNonces }

// nonceTimeout bounds the store's answer about one nonce.
const nonceTimeout = 5 * time.Second

func (n storeNonces) RememberFor(deviceID, nonce string, forgetAfter, now time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), nonceTimeout)
	defer cancel()
	fresh, err := n.st.RememberDeviceNonce(ctx, deviceID, nonce, forgetAfter, now, DefaultMaxNoncesPerDevice)
	if errors.Is(err, store.ErrNonceQuota) {
		return false, fmt.Errorf("%w: %w", control.ErrNonceQuota, err)
	}
	return fresh, err
}
