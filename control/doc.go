// Package control is Porthole's control channel vocabulary, shared by the
// server and the agent: MQTT topic names, commands signed with the control
// key, their verification on the device with a replay memory, the state
// messages a device reports, and the reasons a session closes for.
//
// The agent links this package, so it imports only the standard library and
// golang.org/x/crypto.
//
// # Protocol
//
// Topics carry one fleet and one device each (names are [a-z0-9-]{1,63}, so
// no name can smuggle in '/', '+' or '#'):
//
//	porthole/v1/<fleet>/<device>/cmd    server -> device, QoS 1, signed envelope
//	porthole/v1/<fleet>/<device>/state  device -> server, retained, last will "offline"
//
// Message flow:
//
//  1. The agent connects with the last will "offline" on its state topic
//     (retained), subscribes to its cmd topic and publishes "online"
//     (retained).
//  2. The server builds a [Command] ("open" or "close") addressed to one
//     fleet and device, valid until not_after (at most [MaxValidity] ahead),
//     and publishes [Sign]'s envelope on the device's cmd topic at QoS 1. The
//     broker may deliver it twice, late, or not at all; it cannot forge or
//     alter it.
//  3. The agent passes every message on its cmd topic to [Verifier.Verify].
//     A rejected command is answered with "rejected <reason>" on the state
//     topic and otherwise ignored.
//  4. For an accepted "open" the agent dials the relay and publishes
//     "tunnel_up <session>"; when the session ends (or a "close" arrives) it
//     publishes "tunnel_down <session> <reason>", the reason a
//     [CloseReason]. All state messages are retained so a server that
//     subscribes later sees the latest one. Several server nodes share the
//     state topics through [SharedStateFilter].
//
// The envelope is a JSON object with exactly two members:
//
//	{"payload": base64(command JSON), "sig": base64(ed25519(payload bytes))}
//
// The signature covers the exact payload bytes the envelope carries; that
// byte string is the canonical form. The verifier checks the signature over
// the decoded bytes before parsing them and never re-encodes a command, so
// no two JSON encoders ever need to agree on field order or spacing.
//
// # Fleet policy
//
// An open command may carry a [Policy]: what the fleet's owners ask of the
// device for this session (the ports it may reach, a consent floor, the
// engineers who asked for and approved it). It is signed with the rest of
// the command, and the device applies it only on top of its owner's
// config: the ports granted are those in the command, in the policy and
// in the owner's allow_ports; the consent asked is the stricter of the
// owner's mode and the floor. So neither a broker nor the server can use
// it to widen what the owner allows. The field is left out when the fleet
// asks nothing of the device: an agent that predates it decodes commands
// strictly and refuses one carrying it as malformed, which keeps such a
// session closed rather than opening it without the policy.
//
// # Replay
//
// A command is accepted only until its not_after, and only if not_after is
// at most [MaxValidity] ahead, so a captured command cannot be held back and
// used much later. Both checks allow [ClockSkew] for a device clock that runs
// a little ahead of or behind the server's. Each command carries a random
// 128-bit nonce; the verifier remembers accepted nonces in a [NonceStore]
// until their command could no longer pass the expiry check, so the memory
// is bounded by the validity window and survives agent restarts
// ([FileNonceStore]). A separate issued_at field is therefore unnecessary:
// not_after alone bounds both how long a command lives and how long its
// nonce must be remembered.
package control
