package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// OnPacketRead gives back the send quota that mochi (v2.7) loses: when a
// QoS 1 message finds the device's quota (its Receive Maximum) used up,
// mochi holds it back and sends it once an acknowledgement frees a slot,
// but it forgets the message as it sends it, so the device's PUBACK for it
// finds nothing and frees nothing. Each held-back message so cost one slot
// for good, and after Receive Maximum of them the device was sent nothing
// more until it reconnected: a burst of commands (fifty sessions opened at
// once on one device) left it deaf. A PUBACK for a message mochi no longer
// holds is such a slot, given back here; mochi caps the quota at the
// device's maximum, so a device acknowledging what it was never sent gains
// nothing.
func (h *hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Puback {
		if _, held := cl.State.Inflight.Get(pk.PacketID); !held {
			cl.State.Inflight.IncreaseSendQuota()
		}
	}
	return pk, nil
}
