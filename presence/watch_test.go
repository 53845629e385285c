package presence

import (
	"reflect"
	"testing"
	"time"
)

// TestWatch: a watcher hears every change in the order noted, and nothing
// once stopped or after Close.
func TestWatch(t *testing.T) {
	f := newFixture(t, nil)
	var got []Change // written under the tracker's lock, read after the calls return
	stop := f.Watch(func(c Change) { got = append(got, c) })
	f.DeviceConnected("acme", "dev1", t0)
	f.DeviceDisconnected("acme", "dev1", t0.Add(time.Second))
	f.DeviceDisconnected("acme", "dev2", time.Time{})
	stop()
	f.DeviceConnected("acme", "dev1", t0.Add(2*time.Second))
	want := []Change{
		{Fleet: "acme", Device: "dev1", Online: true, At: t0},
		{Fleet: "acme", Device: "dev1", Online: false, At: t0.Add(time.Second)},
		{Fleet: "acme", Device: "dev2", Online: false},
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("watched %+v; want %+v", got, want)
	}
}

// TestWatchAfterClose: changes noted after Close reach no watcher.
func TestWatchAfterClose(t *testing.T) {
	f := newFixture(t, nil)
	told := 0
	f.Watch(func(Change) { told++ })
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f.DeviceConnected("acme", "dev1", t0)
	f.mu.Lock()
	defer f.mu.Unlock()
	if told != 0 {
		t.Errorf("a watcher was told %d changes after Close", told)
	}
}
