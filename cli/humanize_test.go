package cli

import (
	"testing"
	"time"
)

func TestDeviceStatus(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name     string
		online   bool
		lastSeen time.Time
		want     string
	}{
		{"online", true, now.Add(-time.Hour), "online"},
		{"online, never recorded", true, time.Time{}, "online"},
		{"offline", false, now.Add(-3 * time.Hour), "offline 3 h"},
		{"offline long", false, now.Add(-72 * time.Hour), "offline 3 d"},
		{"never", false, time.Time{}, "never"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := deviceStatus(tt.online, tt.lastSeen, now); got != tt.want {
				t.Errorf("deviceStatus = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestUntilString(t *testing.T) {
	now := time.Now()
	if got := untilString(now.Add(90*time.Minute), now); got != "in 1 h" {
		t.Errorf("untilString(+90m) = %q; want %q", got, "in 1 h")
	}
	if got := untilString(now.Add(-time.Second), now); got != "expired" {
		t.Errorf("untilString(-1s) = %q; want expired", got)
	}
}

func TestDurationFlag(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration // 0: an error
	}{
		{"7d", 7 * 24 * time.Hour},
		{"90m", 90 * time.Minute},
		{"1h30m", 90 * time.Minute},
		{"0d", 0},
		{"-1h", 0},
		{"xd", 0},
		{"tomorrow", 0},
	} {
		var d durationFlag
		err := d.Set(tt.in)
		if time.Duration(d) != tt.want || (err != nil) != (tt.want == 0) {
			t.Errorf("Set(%q) = %v, %v; want %v", tt.in, time.Duration(d), err, tt.want)
		}
	}
	if d := durationFlag(48 * time.Hour); d.String() != "2d" {
		t.Errorf("String() = %q; want 2d", d.String())
	}
}
