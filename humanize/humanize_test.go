package humanize

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Hour, "0 s"},
		{0, "0 s"},
		{59 * time.Second, "59 s"},
		{time.Minute, "1 min"},
		{59*time.Minute + 59*time.Second, "59 min"},
		{time.Hour, "1 h"},
		{3*time.Hour + 40*time.Minute, "3 h"},
		{47 * time.Hour, "47 h"},
		{48 * time.Hour, "2 d"},
		{400 * 24 * time.Hour, "400 d"},
	} {
		if got := Duration(tt.d); got != tt.want {
			t.Errorf("Duration(%v) = %q; want %q", tt.d, got, tt.want)
		}
	}
}
