package bench

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Durations is a sample of timings.
type Durations []time.Duration

// Quantile is the q-quantile (0 ≤ q ≤ 1) by the nearest-rank method: a
// value that was measured, never one interpolated between two. It is 0 for
// an empty sample.
func (d Durations) Quantile(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := int(math.Ceil(q * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// Median is the 0.5-quantile.
func (d Durations) Median() time.Duration { return d.Quantile(0.5) }

// P95 is the 0.95-quantile.
func (d Durations) P95() time.Duration { return d.Quantile(0.95) }

// ratio is a/b, or NaN when b is zero.
func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// fmtRatio prints a ratio the way the report does: "0.62×".
func fmtRatio(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", r)
}

// fmtDur prints a duration in milliseconds with a precision that suits its
// size.
func fmtDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f ms", ms)
	default:
		return fmt.Sprintf("%.2f ms", ms)
	}
}

// fmtBytes prints a byte count with a binary unit.
func fmtBytes(n float64) string {
	switch {
	case math.Abs(n) >= 1<<30:
		return fmt.Sprintf("%.2f GiB", n/(1<<30))
	case math.Abs(n) >= 1<<20:
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	case math.Abs(n) >= 1<<10:
		return fmt.Sprintf("%.1f KiB", n/(1<<10))
	}
	return fmt.Sprintf("%.0f B", n)
}
