package agentretry

import (
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b, err := Backoff{}.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		attempt  int
		min, max time.Duration // over r in [0, 1)
	}{
		{0, 0, 2 * time.Second},
		{1, 2 * time.Second, 4 * time.Second},
		{2, 4 * time.Second, 8 * time.Second},
		{3, 8 * time.Second, 16 * time.Second},
		{4, 16 * time.Second, 32 * time.Second},
		{5, 30 * time.Second, 60 * time.Second}, // 64 s capped
		{6, 30 * time.Second, 60 * time.Second},
		{100, 30 * time.Second, 60 * time.Second},
		{1 << 30, 30 * time.Second, 60 * time.Second},
	} {
		lo, hi := b.Delay(tt.attempt, 0), b.Delay(tt.attempt, 0.999999999)
		if lo != tt.min || hi > tt.max || hi < tt.max-time.Millisecond {
			t.Errorf("Delay(%d) ranges over [%v, %v]; want [%v, %v)", tt.attempt, lo, hi, tt.min, tt.max)
		}
		if mid := b.Delay(tt.attempt, 0.5); mid <= lo || mid >= hi {
			t.Errorf("Delay(%d, 0.5) = %v; want it strictly between %v and %v (jitter)", tt.attempt, mid, lo, hi)
		}
	}
}

// TestBackoffNeverExceedsMax tries the edges where doubling overflows.
func TestBackoffNeverExceedsMax(t *testing.T) {
	for _, b := range []Backoff{
		{First: 3 * time.Second, Max: time.Minute},
		{First: time.Nanosecond, Max: 1<<63 - 1},
		{First: 1<<62 + 1, Max: 1<<63 - 1},
		{First: time.Second, Max: time.Second},
	} {
		for attempt := range 70 {
			for _, r := range []float64{0, 0.5, 0.999999} {
				if d := b.Delay(attempt, r); d < 0 || d > b.Max {
					t.Fatalf("%+v.Delay(%d, %v) = %v; want within [0, %v]", b, attempt, r, d, b.Max)
				}
			}
		}
	}
}

func TestBackoffDefaults(t *testing.T) {
	if b, err := (Backoff{}).WithDefaults(); err != nil || b.First != 2*time.Second || b.Max != time.Minute {
		t.Errorf("zero Backoff = %+v, %v; want 2s to 1m", b, err)
	}
	for _, b := range []Backoff{{First: -time.Second}, {First: time.Minute, Max: time.Second}} {
		if _, err := b.WithDefaults(); err == nil {
			t.Errorf("%+v accepted", b)
		}
	}
}
