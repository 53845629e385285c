package cli

import (
	"fmt"
	"time"
)

// humanizeDuration says roughly how long d is, in the largest unit that
// keeps it readable: "45 s", "12 min", "3 h", "2 d". Hours run up to two
// days, so "36 h" is not rounded down to "1 d". Negative durations (clock
// skew) count as zero.
func humanizeDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", max(d, 0)/time.Second)
	case d < time.Hour:
		return fmt.Sprintf("%d min", d/time.Minute)
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h", d/time.Hour)
	default:
		return fmt.Sprintf("%d d", d/(24*time.Hour))
	}
}

// deviceStatus is the STATUS column of `porthole devices`: "online",
// "offline 3 h" (since it was last seen) or "never" (never connected).
func deviceStatus(online bool, lastSeen, now time.Time) string {
	switch {
	case online:
		return "online"
	case lastSeen.IsZero():
		return "never"
	default:
		return "offline " + humanizeDuration(now.Sub(lastSeen))
	}
}

// untilString is "in 3 h" for a future t, "expired" for a past one.
func untilString(t, now time.Time) string {
	if !t.After(now) {
		return "expired"
	}
	return "in " + humanizeDuration(t.Sub(now))
}
