package cli

import (
	"time"

	"github.com/porthole/porthole/humanize"
)

// deviceStatus is the STATUS column of `porthole devices`: "online",
// "offline 3 h" (since it was last seen) or "never" (never connected).
func deviceStatus(online bool, lastSeen, now time.Time) string {
	switch {
	case online:
		return "online"
	case lastSeen.IsZero():
		return "never"
	default:
		return "offline " + humanize.Duration(now.Sub(lastSeen))
	}
}

// untilString is "in 3 h" for a future t, "expired" for a past one.
func untilString(t, now time.Time) string {
	if !t.After(now) {
		return "expired"
	}
	return "in " + humanize.Duration(t.Sub(now))
}
