// Package broker runs Porthole's embedded MQTT broker: the control channel's
// meeting point for one server and its devices, with device authentication,
// a per-device ACL and presence built in. It wraps
// github.com/mochi-mqtt/server/v2 behind this package's own small API
// ([New], [Broker.Serve], [Broker.Publish], [Broker.Subscribe],
// [Broker.Close]) so another broker can replace it without touching callers.
//
// # Connection flow
//
//  1. The caller accepts on its own listener (TLS in production) and hands it
//     to [Broker.Serve]. A connection has [Config.ConnectTimeout] to finish
//     the TLS handshake, send CONNECT and be authenticated.
//  2. CONNECT must carry the username "<fleet>/<device>" and a password from
//     control.DevicePassword, minted with the device's own enrolled ed25519
//     key. The broker looks the key up with [Config.DeviceKey] (an unknown or
//     deleted device has none) and checks the password with
//     control.CheckDevicePassword. The client id must be the username (or
//     empty, and then the broker assigns it), so a device can only ever take
//     over its own session: a second connection of the same device replaces
//     the first. A last will, if any, must be on the device's own state topic.
//     Anything else is refused with a CONNACK reason code and logged at debug
//     (or info, for a known device whose password failed).
//  3. The keep-alive the device asks for is held within [Config.MinKeepAlive]
//     and [Config.MaxKeepAlive] (MQTT 5 clients are told; an MQTT 3.1.1
//     client asking for more, or none, is refused); a device that stays
//     silent for 1.5 keep-alives is dropped, so a connection lost without a
//     FIN does not look online for long.
//  4. Once the session is established, [PresenceHandler.DeviceConnected] is
//     called; when the device's last connection ends for any reason,
//     [PresenceHandler.DeviceDisconnected].
//  5. The device may subscribe only to exactly porthole/v1/<fleet>/<device>/cmd
//     and publish only to exactly porthole/v1/<fleet>/<device>/state: no
//     wildcards, no shared subscriptions, no $SYS, no other device's topics.
//
// The server itself talks through the in-process client: [Broker.Publish]
// sends (signed) commands to a device's cmd topic and [Broker.Subscribe]
// reads the state topics. These bypass the ACL.
//
// Sessions are not kept after a device disconnects (session expiry is capped
// at zero): a device subscribes again on each connection and commands sent
// while it was away are dropped, which is safe because the server sees it
// offline and commands expire anyway.
package broker
