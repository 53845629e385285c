package tcprto

import (
	"time"

	"golang.org/x/sys/unix"
)

// setMaxRTO caps the socket fd's retransmission timeout at d.
func setMaxRTO(fd uintptr, d time.Duration) error {
	return unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_RTO_MAX_MS, int(d/time.Millisecond))
}

// maxRTO reads the socket fd's cap, for tests.
func maxRTO(fd uintptr) (time.Duration, error) {
	ms, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_RTO_MAX_MS)
	return time.Duration(ms) * time.Millisecond, err
}
