//go:build !linux

package tcprto

import "time"

func setMaxRTO(uintptr, time.Duration) error { return errUnsupported }

func maxRTO(uintptr) (time.Duration, error) { return 0, errUnsupported }
