package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// mochi (v2.7) loses commands in a burst to one device, in two ways, which
// the hook repairs; the device's agent also asks for a Receive Maximum as
// large as the broker holds, so that mochi never holds a command back.
//
// First, when a QoS 1 message finds the device's quota (its Receive
// Maximum) used up, mochi holds it back and sends it once an
// acknowledgement frees a slot, but forgets the message as it sends it, so
// the device's PUBACK for it finds nothing and frees nothing. Each
// held-back message so cost one slot for good, and after Receive Maximum
// of them the device was sent nothing more until it reconnected.
//
// Second, mochi keeps the messages it sends a device and those the device
// sends it in one map by packet id, though each side numbers its own: a
// state the device publishes (tunnel_up of one of the sessions) erases the
// command of the same number that mochi holds back or awaits a PUBACK for.
// A held-back command so erased was never sent.
//
// Fifty sessions asked of one device at once lost commands both ways (issue
// 11: sessions that "did not answer within 33 s").
//
// A third bug, a deadlock (Inflight.NextImmediate took its read lock
// twice, so a Publish to the device between the two hung its connection),
// is mended in mochi itself: third_party/mochi-server.

// savedKey is where OnPacketRead keeps, for OnPacketProcessed, the message
// to a device that a PUBLISH from it with the same packet id would erase.
type savedKey struct {
	cl *mqtt.Client
	id uint16
}

// OnPacketRead gives back the send quota of a PUBACK for a message mochi
// no longer holds (the first bug; mochi caps the quota at the device's
// maximum, so a device acknowledging what it was never sent gains
// nothing), and keeps the message to the device that a PUBLISH from it
// would erase (the second).
func (h *hook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	switch pk.FixedHeader.Type {
	case packets.Puback:
		if _, held := cl.State.Inflight.Get(pk.PacketID); !held {
			cl.State.Inflight.IncreaseSendQuota()
		}
	case packets.Publish:
		if pk.FixedHeader.Qos == 0 {
			break
		}
		// Of what mochi keeps by packet id, only messages to the device
		// are PUBLISH packets (its own acknowledgements are not).
		if m, ok := cl.State.Inflight.Get(pk.PacketID); ok && m.FixedHeader.Type == packets.Publish {
			h.saved.Store(savedKey{cl, pk.PacketID}, m)
		}
	}
	return pk, nil
}

// OnPacketProcessed puts back the message to the device that the PUBLISH
// just processed erased, if OnPacketRead kept one.
func (h *hook) OnPacketProcessed(cl *mqtt.Client, pk packets.Packet, _ error) {
	if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Qos == 0 {
		return
	}
	m, ok := h.saved.LoadAndDelete(savedKey{cl, pk.PacketID})
	if !ok {
		return
	}
	if _, taken := cl.State.Inflight.Get(pk.PacketID); !taken {
		cl.State.Inflight.Set(m.(packets.Packet))
	}
}

// OnDisconnect forgets what OnPacketRead kept for a device that left
// before its PUBLISH was processed.
func (h *hook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.saved.Range(func(k, _ any) bool {
		if k.(savedKey).cl == cl {
			h.saved.Delete(k)
		}
		return true
	})
}
