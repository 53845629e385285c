package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/porthole/porthole/store"
)

// testDeviceNonces: a device's request nonce is fresh once; the same nonce
// of another device is its own; an expired one is forgotten; a device
// holding its share is refused, until its nonces expire; a deleted
// device's nonces go with it.
func testDeviceNonces(t *testing.T, s store.Store) {
	ctx := t.Context()
	f := mkFleet(t, s, "alpha")
	tok := mkEnrollmentToken(t, s, f.ID, 2)
	d1 := mustEnroll(t, s, tok.Hash, "dev1")
	d2 := mustEnroll(t, s, tok.Hash, "dev2")
	remember := func(d *store.Device, nonce string, until, now time.Time, max int) (bool, error) {
		return s.RememberDeviceNonce(ctx, d.ID, nonce, until, now, max)
	}
	later := t0.Add(2 * time.Minute)
	fresh, err := remember(d1, "n1", later, t0, 10)
	ok(t, "remember n1", err)
	equal(t, "n1 the first time", fresh, true)
	fresh, err = remember(d1, "n1", later, t0.Add(time.Second), 10)
	ok(t, "remember n1 again", err)
	equal(t, "n1 again (a replay)", fresh, false)
	fresh, err = remember(d2, "n1", later, t0, 10)
	ok(t, "remember dev2's n1", err)
	equal(t, "another device's n1", fresh, true)

	for i := range 9 {
		if _, err := remember(d1, fmt.Sprintf("q%d", i), later, t0, 10); err != nil {
			t.Fatalf("nonce %d of 10: %v", i+2, err)
		}
	}
	_, err = remember(d1, "one-too-many", later, t0, 10)
	wantErr(t, "past the share", err, store.ErrNonceQuota)
	// Once they expire, they are forgotten, and the share is free again.
	fresh, err = remember(d1, "after", later.Add(2*time.Minute), later.Add(time.Second), 10)
	ok(t, "remember after expiry", err)
	equal(t, "a new nonce after the others expired", fresh, true)

	ok(t, "DeleteDevice", s.DeleteDevice(ctx, d2.ID))
	_, err = remember(d2, "n2", later, t0, 10)
	wantErr(t, "a deleted device's nonce", err, store.ErrNotFound)
}
