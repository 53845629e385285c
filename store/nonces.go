package store

import (
	"context"
	"errors"
	"time"
)

// ErrNonceQuota is RememberDeviceNonce's error when the device already
// holds its share of the nonces not yet expired: a device that signs so
// many requests at once is refused, and the store does not grow without
// bound.
var ErrNonceQuota = errors.New("store: the device holds too many request nonces")

// DeviceNonces remembers the nonces of devices' request credentials in the
// database every API node shares, so that none is accepted twice by any
// of them.
type DeviceNonces interface {
	// RememberDeviceNonce records nonce for the device until forgetAfter
	// and reports whether it was fresh; a device holding max nonces not
	// expired at now is ErrNonceQuota. Expired ones are forgotten.
	RememberDeviceNonce(ctx context.Context, deviceID, nonce string, forgetAfter, now time.Time, max int) (fresh bool, err error)
}
