package agent

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestServerClock(t *testing.T) {
	local := time.Unix(1_800_000_000, 0)
	var mono time.Duration
	server := local.Add(-3 * time.Minute)
	var fail error
	c := NewServerClock(func() time.Time { return local }, func(context.Context) (time.Time, error) { return server, fail }, nil)
	c.Monotonic = func() time.Duration { return mono }
	if !c.Now().Equal(local) {
		t.Fatal("an unmeasured clock is not the device's")
	}
	if changed, err := c.Sync(t.Context()); !changed || err != nil || !c.Now().Equal(server) || c.Offset() != -3*time.Minute {
		t.Fatalf("Sync = %v, %v; Now %v, want %v; offset %v", changed, err, c.Now(), server, c.Offset())
	}
	// The device's clock is stepped (NTP, or someone setting the date):
	// the server's time goes on by the monotonic clock alone.
	local = local.Add(-time.Hour)
	mono += 10 * time.Second
	if want := server.Add(10 * time.Second); !c.Now().Equal(want) {
		t.Fatalf("after the device's clock stepped: Now %v; want %v", c.Now(), want)
	}
	// Within a minute nothing is measured again.
	server = server.Add(time.Hour)
	if changed, _ := c.Sync(t.Context()); changed {
		t.Fatal("measured again within a minute")
	}
	// A few seconds' correction is applied, but is no change.
	mono += 2 * clockResync
	server = c.Now().Add(3 * time.Second)
	if changed, _ := c.Sync(t.Context()); changed || !c.Now().Equal(server) {
		t.Fatalf("a 3 s correction: changed %v, Now %v; want %v", changed, c.Now(), server)
	}
	mono += 2 * clockResync
	fail = errors.New("unreachable")
	before := c.Now()
	if _, err := c.Sync(t.Context()); err == nil || !c.Now().Equal(before) {
		t.Fatalf("a failed measurement: %v, Now %v; want %v", err, c.Now(), before)
	}
}
