// Package freeport picks TCP ports for the servers tests start on a port
// they name (and start again on the same port): a port free on every
// address, drawn from below the kernel's ephemeral range. A port from that
// range (what listening on :0 gives) can be taken by any outgoing
// connection of a test running in parallel, between the check and the
// server's bind; below it only a listener that names it can.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
)

var given = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// Pick returns a port free now on every address. No port is handed out
// twice in one process.
func Pick() (int, error) {
	given.Lock()
	defer given.Unlock()
	low, high := 10000, ephemeralLow()-1
	for range 1000 {
		p := low + rand.IntN(high-low+1)
		if given.ports[p] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		given.ports[p] = true
		return p, nil
	}
	return 0, errors.New("freeport: no free TCP port below the ephemeral range")
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	var low, high int
	if _, err := fmt.Sscan(string(data), &low, &high); err != nil || low <= 11000 {
		return 32768
	}
	return low
}
