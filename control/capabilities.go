package control

import "slices"

// Capabilities name what an agent understands of the open command beyond
// the fields every agent has always known (type, session, fleet, device,
// relay, ports, limits, not_after, nonce). An agent reports the ones it
// has (PUT /api/v1/device/info), so that the server can tell before it
// asks that a device cannot take a command: an agent decodes commands
// strictly and refuses one with a field it does not know.
//
// A new optional field of Command gets a capability here, in the same
// change (TestCapabilitiesCoverCommand keeps them together).
const (
	// CapRelay2 is Command.Relay2: the relay's second protocol, on the
	// server's TLS port.
	CapRelay2 = "relay2"
	// CapPolicy is Command.Policy: the fleet's ports, consent floor and
	// the engineers' names (four-eyes), applied by the device.
	CapPolicy = "policy"
)

// Capabilities are the capabilities this build of the agent has, in the
// order the fields were added.
func Capabilities() []string { return []string{CapRelay2, CapPolicy} }

// Needs are the capabilities a device must have to take c: one for each
// optional field c sets.
func (c *Command) Needs() []string {
	var need []string
	if c.Relay2 != "" {
		need = append(need, CapRelay2)
	}
	if c.Policy != nil {
		need = append(need, CapPolicy)
	}
	return need
}

// Lacks is what of need a device that reported has lacks, in need's
// order.
func Lacks(has, need []string) []string {
	var lack []string
	for _, n := range need {
		if !slices.Contains(has, n) {
			lack = append(lack, n)
		}
	}
	return lack
}
