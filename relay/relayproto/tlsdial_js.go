//go:build js

package relayproto

import "net"

// heldUnder is nil in a browser, which holds the TLS connection itself:
// Conn's writes go straight through.
func heldUnder(net.Conn) *HeldConn { return nil }
