package brokerclient

import (
	"testing"
	"time"
)

func TestBackoffGrowsWithJitterUpToCap(t *testing.T) {
	t.Parallel()
	b := newBackoff()
	if d := b.delay(0); d != 0 {
		t.Errorf("delay(0) = %s; want 0: the first reconnection is at once", d)
	}
	for attempt, full := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 7: 60 * time.Second, 1000: 60 * time.Second} {
		for range 50 {
			if d := b.delay(attempt); d < full/2 || d > full {
				t.Fatalf("delay(%d) = %s; want between %s and %s", attempt, d, full/2, full)
			}
		}
	}
}

func TestBackoffSlowsDownFlappingConnections(t *testing.T) {
	t.Parallel()
	b := newBackoff()
	now := time.Now()
	b.up(now)
	b.down(now.Add(time.Second)) // dropped right after it came up
	if d := b.delay(0); d < retryBase/2 {
		t.Errorf("after a flap, delay(0) = %s; want at least %s", d, retryBase/2)
	}
	b.up(now.Add(2 * time.Second))
	b.down(now.Add(2*time.Second + stableAfter)) // lasted: back to normal
	if d := b.delay(0); d != 0 {
		t.Errorf("after a stable connection, delay(0) = %s; want 0", d)
	}
}
