// Package humanize says how long something took or has been, the way people
// read it in a table or a sentence: "45 s", "12 min", "3 h", "2 d". The CLI
// and the API's messages say it alike.
package humanize

import (
	"fmt"
	"time"
)

// Duration says roughly how long d is, in the largest unit that keeps it
// readable. Hours run up to two days, so "36 h" is not rounded down to
// "1 d". Negative durations (clock skew) count as zero.
func Duration(d time.Duration) string {
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
