//go:build !windows

package relayproto

import "syscall"

// peerClosedErrnos are the errors of a connection the other end closed
// (ClosedByPeer).
var peerClosedErrnos = []error{syscall.ECONNRESET, syscall.EPIPE}
