package brokerclient

import "github.com/porthole/porthole/broker"

// The server drives devices through broker.PubSub, whichever broker it has.
var _ broker.PubSub = (*Client)(nil)
