package agent

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestServerClock(t *testing.T) {
	local := time.Unix(1_800_000_000, 0)
	server := local.Add(-3 * time.Minute)
	var fail error
	c := NewServerClock(func() time.Time { return local }, func(context.Context) (time.Time, error) { return server, fail }, nil)
	if !c.Now().Equal(local) {
		t.Fatal("an unmeasured clock is not the device's")
	}
	if changed, err := c.Sync(t.Context()); !changed || err != nil || !c.Now().Equal(server) {
		t.Fatalf("Sync = %v, %v; Now %v, want %v", changed, err, c.Now(), server)
	}
	// Within a minute nothing is measured again.
	server = server.Add(time.Hour)
	if changed, _ := c.Sync(t.Context()); changed {
		t.Fatal("measured again within a minute")
	}
	// A few seconds off is noise.
	local = local.Add(2 * clockResync)
	server = local.Add(3 * time.Second)
	if changed, _ := c.Sync(t.Context()); !changed || c.Offset() != 0 {
		t.Fatalf("offset %v; want 0 for 3 s", c.Offset())
	}
	local = local.Add(2 * clockResync)
	fail = errors.New("unreachable")
	if _, err := c.Sync(t.Context()); err == nil || c.Offset() != 0 {
		t.Fatalf("a failed measurement: %v, offset %v", err, c.Offset())
	}
}
