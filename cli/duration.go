package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// durationFlag is a --ttl style flag: a Go duration ("90m", "12h") or a
// whole number of days ("7d"), which time.ParseDuration does not take.
type durationFlag time.Duration

func (d *durationFlag) String() string {
	if v := time.Duration(*d); v > 0 && v%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", v/(24*time.Hour))
	}
	return time.Duration(*d).String()
}
func (d *durationFlag) Type() string { return "duration" }

func (d *durationFlag) Set(s string) error {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a number of days like 7d", s)
		}
		*d = durationFlag(time.Duration(n) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("%q is not a duration like 30m, 12h or 7d", s)
	}
	*d = durationFlag(v)
	return nil
}
