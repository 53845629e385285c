package relayproto

import "syscall"

// peerClosedErrnos are the errors of a connection the other end closed
// (ClosedByPeer): Winsock's own, which syscall.ECONNRESET does not match
// on Windows.
var peerClosedErrnos = []error{syscall.WSAECONNRESET, syscall.WSAECONNABORTED}
