package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/porthole/porthole/store"
)

// presenceOf is what a device's presence reads back as.
type presenceOf struct {
	Online   bool
	LastSeen time.Time
}

func wantPresence(t *testing.T, s store.Store, what string, d *store.Device, want presenceOf) {
	t.Helper()
	got, err := s.GetDevice(t.Context(), d.ID)
	ok(t, "GetDevice", err)
	equal(t, what+": presence of "+d.Name, presenceOf{got.Online, got.LastSeen}, want)
}

// testPresence: online state follows each change; last-seen only moves
// forward.
func testPresence(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mkFleet(t, s, "alpha")
	et := mkEnrollmentToken(t, s, a.ID, 2)
	d, other := mustEnroll(t, s, et.Hash, "dev1"), mustEnroll(t, s, et.Hash, "dev2")
	t1, t2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
	set := func(online bool, at time.Time) {
		t.Helper()
		ok(t, "SetDevicePresence", s.SetDevicePresence(ctx, store.DevicePresence{DeviceID: d.ID, Online: online, At: at}))
	}

	set(true, t1)
	wantPresence(t, s, "online", d, presenceOf{true, stored(t1)})
	set(false, t2)
	wantPresence(t, s, "offline", d, presenceOf{false, stored(t2)})
	// A change stamped earlier than the last sighting still sets the state
	// but leaves last-seen where it was.
	set(true, t1)
	wantPresence(t, s, "online, stamped earlier", d, presenceOf{true, stored(t2)})
	wantPresence(t, s, "untouched", other, presenceOf{false, time.Time{}})

	// A device named twice takes its last change; a missing one is skipped
	// without failing the others.
	ok(t, "SetDevicePresence of several", s.SetDevicePresence(ctx,
		store.DevicePresence{DeviceID: other.ID, Online: true, At: t1},
		store.DevicePresence{DeviceID: "dev_missing", Online: true, At: t1},
		store.DevicePresence{DeviceID: d.ID, Online: true, At: t2.Add(time.Second)},
		store.DevicePresence{DeviceID: d.ID, Online: false, At: t2.Add(2 * time.Second)},
	))
	wantPresence(t, s, "last of two changes", d, presenceOf{false, stored(t2.Add(2 * time.Second))})
	wantPresence(t, s, "beside a missing device", other, presenceOf{true, stored(t1)})
	ok(t, "SetDevicePresence of nothing", s.SetDevicePresence(ctx))
}

// testTouchDevicesSeen: last-seen moves forward, never back, and nothing
// else changes.
func testTouchDevicesSeen(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mkFleet(t, s, "alpha")
	et := mkEnrollmentToken(t, s, a.ID, 3)
	on, off, never := mustEnroll(t, s, et.Hash, "on"), mustEnroll(t, s, et.Hash, "off"), mustEnroll(t, s, et.Hash, "never")
	t1, t2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
	ok(t, "SetDevicePresence", s.SetDevicePresence(ctx,
		store.DevicePresence{DeviceID: on.ID, Online: true, At: t1},
		store.DevicePresence{DeviceID: off.ID, Online: false, At: t2}))

	ok(t, "TouchDevicesSeen", s.TouchDevicesSeen(ctx, []string{on.ID, off.ID, "dev_missing"}, t2.Add(-time.Second)))
	wantPresence(t, s, "touched", on, presenceOf{true, stored(t2.Add(-time.Second))})
	wantPresence(t, s, "touched with an earlier time", off, presenceOf{false, stored(t2)})
	wantPresence(t, s, "not named", never, presenceOf{false, time.Time{}})
	ok(t, "TouchDevicesSeen of nothing", s.TouchDevicesSeen(ctx, nil, t2))
}

// testPresenceBatches: a batch far larger than one statement takes is
// written whole, devices at its start, middle and end included.
func testPresenceBatches(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := mkFleet(t, s, "alpha")
	et := mkEnrollmentToken(t, s, a.ID, 3)
	devs := []*store.Device{mustEnroll(t, s, et.Hash, "first"), mustEnroll(t, s, et.Hash, "middle"), mustEnroll(t, s, et.Hash, "last")}
	const n = 2500
	slots := map[int]*store.Device{0: devs[0], n / 2: devs[1], n - 1: devs[2]}
	ids := make([]string, n)
	changes := make([]store.DevicePresence, n)
	for i := range n {
		ids[i] = fmt.Sprintf("dev_missing%d", i)
		if d := slots[i]; d != nil {
			ids[i] = d.ID
		}
		changes[i] = store.DevicePresence{DeviceID: ids[i], Online: true, At: t0}
	}
	ok(t, "SetDevicePresence", s.SetDevicePresence(ctx, changes...))
	for _, d := range devs {
		wantPresence(t, s, "set in a large batch", d, presenceOf{true, stored(t0)})
	}
	ok(t, "TouchDevicesSeen", s.TouchDevicesSeen(ctx, ids, t0.Add(time.Hour)))
	for _, d := range devs {
		wantPresence(t, s, "touched in a large batch", d, presenceOf{true, stored(t0.Add(time.Hour))})
	}
}

// testMarkAllOffline: every online device goes offline and keeps its
// last-seen time.
func testMarkAllOffline(t *testing.T, s store.Store) {
	ctx := t.Context()
	a, b := mkFleet(t, s, "alpha"), mkFleet(t, s, "bravo")
	d1 := mustEnroll(t, s, mkEnrollmentToken(t, s, a.ID, 1).Hash, "dev1")
	d2 := mustEnroll(t, s, mkEnrollmentToken(t, s, b.ID, 1).Hash, "dev1")
	off := mustEnroll(t, s, mkEnrollmentToken(t, s, b.ID, 1).Hash, "dev2")
	t1 := t0.Add(time.Minute)
	ok(t, "SetDevicePresence", s.SetDevicePresence(ctx,
		store.DevicePresence{DeviceID: d1.ID, Online: true, At: t0},
		store.DevicePresence{DeviceID: d2.ID, Online: true, At: t1},
		store.DevicePresence{DeviceID: off.ID, Online: false, At: t1}))

	n, err := s.MarkAllOffline(ctx)
	ok(t, "MarkAllOffline", err)
	equal(t, "devices marked offline", n, 2)
	wantPresence(t, s, "marked offline", d1, presenceOf{false, stored(t0)})
	wantPresence(t, s, "marked offline", d2, presenceOf{false, stored(t1)})
	wantPresence(t, s, "already offline", off, presenceOf{false, stored(t1)})
	n, err = s.MarkAllOffline(ctx)
	ok(t, "MarkAllOffline again", err)
	equal(t, "devices marked offline the second time", n, 0)
}
