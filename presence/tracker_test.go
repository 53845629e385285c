package presence

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/porthole/porthole/broker"
	"github.com/porthole/porthole/internal/testwait"
	"github.com/porthole/porthole/store"
)

var _ broker.PresenceHandler = (*Tracker)(nil)

func TestConnectDisconnect(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	d := f.enroll(t, "dev1")

	f.DeviceConnected("acme", "dev1", t0)
	f.waitPresence(t, d.ID, presence{true, t0})
	f.DeviceDisconnected("acme", "dev1", t0.Add(time.Minute))
	f.waitPresence(t, d.ID, presence{false, t0.Add(time.Minute)})
	testwait.For(t, waitTimeout, "the offline device to be forgotten", func() bool {
		_, known := f.queued()
		return known == 0
	})
	f.DeviceConnected("acme", "dev1", t0.Add(2*time.Minute))
	f.waitPresence(t, d.ID, presence{true, t0.Add(2 * time.Minute)})
}

// TestRefresh: connected devices' last-seen time is written in one batch
// per refresh, and only theirs.
func TestRefresh(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.RefreshInterval = 5 * time.Millisecond })
	var online []string
	for i := range 3 {
		d := f.enroll(t, fmt.Sprintf("dev%d", i))
		f.DeviceConnected("acme", d.Name, t0)
		online = append(online, d.ID)
	}
	gone := f.enroll(t, "gone")
	f.DeviceConnected("acme", "gone", t0)
	f.DeviceDisconnected("acme", "gone", t0.Add(time.Second))
	for _, id := range online {
		f.waitPresence(t, id, presence{true, t0})
	}
	f.waitPresence(t, gone.ID, presence{false, t0.Add(time.Second)})

	later := t0.Add(time.Hour)
	f.clock.set(later)
	for _, id := range online {
		f.waitPresence(t, id, presence{true, later})
	}
	if got := f.presence(t, gone.ID); got != (presence{false, t0.Add(time.Second)}) {
		t.Errorf("the disconnected device was refreshed: %+v", got)
	}
	touches := f.st.touchCalls()
	slices.Sort(online)
	for i, ids := range touches {
		ids = slices.Sorted(slices.Values(ids))
		if !slices.Equal(ids, online) {
			t.Errorf("refresh %d touched %v; want every connected device in one call, %v", i, ids, online)
		}
	}
}

// TestFlapping: a storm of connects and disconnects while the store is
// stuck never blocks the caller, keeps one queued change per device, starts
// no goroutines, and ends with each device's latest state written.
func TestFlapping(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	devs := []*store.Device{f.enroll(t, "dev1"), f.enroll(t, "dev2")}
	release := f.st.hold()
	f.DeviceConnected("acme", "dev1", t0) // the writer takes it and waits at the gate
	testwait.For(t, waitTimeout, "the writer to take the first change", func() bool {
		pending, _ := f.queued()
		return pending == 0
	})
	goroutines := runtime.NumGoroutine()

	const flaps = 10000
	stormed := make(chan struct{})
	go func() {
		defer close(stormed)
		for i := range flaps {
			at := t0.Add(time.Duration(i) * time.Millisecond)
			for _, d := range devs {
				f.DeviceConnected("acme", d.Name, at)
				f.DeviceDisconnected("acme", d.Name, at.Add(time.Microsecond))
			}
		}
	}()
	select {
	case <-stormed:
	case <-time.After(waitTimeout):
		t.Fatal("presence calls blocked while the store was stuck")
	}
	if pending, known := f.queued(); pending != len(devs) || known != len(devs) {
		t.Errorf("after the storm %d changes are queued for %d devices; want one per device, %d", pending, known, len(devs))
	}
	testwait.GoroutinesAtMost(t, goroutines+2, waitTimeout) // no goroutine per call

	release()
	last := t0.Add((flaps-1)*time.Millisecond + time.Microsecond).Truncate(time.Millisecond)
	for _, d := range devs {
		f.waitPresence(t, d.ID, presence{false, last})
	}
	if sets := f.st.setCalls(); len(sets) > 3 {
		t.Errorf("the storm took %d writes (%v); want the first change and one coalesced write", len(sets), sets)
	}
}

// TestRetry: a failing store delays the change; it is not lost.
func TestRetry(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	d := f.enroll(t, "dev1")
	f.st.mu.Lock()
	f.st.fails = 5
	f.st.mu.Unlock()

	f.DeviceConnected("acme", "dev1", t0)
	f.waitPresence(t, d.ID, presence{true, t0})
	f.st.mu.Lock()
	defer f.st.mu.Unlock()
	if f.st.fails != 0 {
		t.Errorf("%d injected failures left; want all used up by retries", f.st.fails)
	}
}

// TestUnknownDevice: a device deleted while connected has nothing to write
// and is forgotten, without holding up the devices beside it.
func TestUnknownDevice(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	release := f.st.hold()
	d := f.enroll(t, "dev1")
	f.DeviceConnected("acme", "ghost", t0)
	f.DeviceConnected("acme", "dev1", t0)
	release()
	f.waitPresence(t, d.ID, presence{true, t0})
	testwait.For(t, waitTimeout, "the unknown device to be forgotten", func() bool {
		pending, known := f.queued()
		return pending == 0 && known == 1
	})
}

// TestReenrolled: a device deleted and enrolled again under its name while
// its old connection lived is recorded under its new ID.
func TestReenrolled(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	old := f.enroll(t, "dev1")
	f.DeviceConnected("acme", "dev1", t0)
	f.waitPresence(t, old.ID, presence{true, t0})

	if err := f.st.DeleteDevice(t.Context(), old.ID); err != nil {
		t.Fatal(err)
	}
	d := f.enroll(t, "dev1")
	// The new connection replaces the old one: no disconnect in between.
	f.DeviceConnected("acme", "dev1", t0.Add(time.Minute))
	f.waitPresence(t, d.ID, presence{true, t0.Add(time.Minute)})
}

// TestCloseFlushes: Close writes every change noted before it and the
// last-seen time of the devices still connected, then ignores changes.
func TestCloseFlushes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	on, off := f.enroll(t, "on"), f.enroll(t, "off")
	f.DeviceConnected("acme", "on", t0)
	f.waitPresence(t, on.ID, presence{true, t0})

	release := f.st.hold()
	f.DeviceConnected("acme", "off", t0)
	f.DeviceDisconnected("acme", "off", t0.Add(time.Second))
	closed := make(chan error, 1)
	go func() { closed <- f.Close() }()
	release()
	closing := t0.Add(time.Hour)
	f.clock.set(closing)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := f.presence(t, off.ID); got != (presence{false, t0.Add(time.Second)}) {
		t.Errorf("after Close the disconnected device is %+v; want offline since its disconnect", got)
	}
	if got := f.presence(t, on.ID); !got.Online || got.LastSeen.Before(t0) {
		t.Errorf("after Close the connected device is %+v; want online, last seen no earlier than %v", got, t0)
	}

	f.DeviceDisconnected("acme", "on", closing)
	if err := f.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v; want ErrClosed", err)
	}
	if got := f.presence(t, on.ID); !got.Online {
		t.Errorf("a change after Close was written: %+v", got)
	}
}

// TestCloseHungStore: Close gives up after WriteTimeout rather than wait
// for a store that never answers.
func TestCloseHungStore(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.WriteTimeout = 50 * time.Millisecond })
	f.enroll(t, "dev1")
	release := f.st.hold()
	defer release()
	f.DeviceConnected("acme", "dev1", t0)
	start := time.Now()
	if err := f.Close(); err == nil {
		t.Error("Close with a hung store = nil; want the write's error")
	}
	if took := time.Since(start); took > waitTimeout/2 {
		t.Errorf("Close took %v with a 50 ms write timeout", took)
	}
}

func TestNewChecksConfig(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{}); err == nil {
		t.Error("New without a store succeeded")
	}
	if _, err := New(Config{Store: &spyStore{}, RefreshInterval: -time.Second}); err == nil {
		t.Error("New with a negative refresh interval succeeded")
	}
}
