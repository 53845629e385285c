// Package relay is Porthole's relay: the meeting point where a device
// behind NAT, which dials out, and an engineer's client, which dials in, are
// joined for one session. It splices byte streams in memory and reads
// nothing inside them: the engineer's own SSH session runs end to end, inside
// the spliced stream, to the device's embedded SSH server. The relay opens
// no host ports and dials no addresses.
//
// It speaks two protocols, which share its sessions, registrations and
// refusals (an engineer of either reaches a device of either): the second,
// TLS 1.3 on the server's one port with a signed hello and yamux streams
// (ServeTLS, ServeConn; package relayproto documents its flow, v2.go
// implements it), and the first, SSH, on a port of its own (Serve), for
// agents and clients that predate the second. The rest of this comment
// documents the first; device.go, engineer.go and splice.go are the core
// both fronts use.
//
// The relay is an SSH server (golang.org/x/crypto/ssh) whose host key is
// certified by the host CA, so neither side trusts it on first use. Every
// decision about who may do what is taken after the client has proved that it
// holds its key (in the server's VerifiedPublicKeyCallback).
//
// # Protocol flow
//
//  1. The server opens a session (session id S, device fleet/dev) and sends the
//     device an "open" command naming the relay's address.
//
//  2. The device dials the relay and logs in as the SSH user "<fleet>/<device>"
//     (control.DeviceUsername) with public-key authentication by its enrolled
//     ed25519 key: a plain key, not a certificate. The relay looks the key up
//     with [Config.DeviceKey]; an unknown or deleted device is refused.
//
//  3. The device sends the global request "tcpip-forward" (RFC 4254 §7.1)
//     with want-reply set, bind address S and bind port 0. The relay accepts
//     it only if [Config.Session] reports S open and addressed to this very
//     fleet/device, and replies success with the port as a uint32 (always
//     0). The session is now registered: the relay knows which connection
//     reaches S. "cancel-tcpip-forward" with the same address and port 0
//     frees the registration (channels already spliced keep running until
//     either end closes them). One device connection may register several
//     sessions. A second registration of a registered session, from another
//     connection of the same device (it reconnected before the relay noticed
//     that the old connection had died), replaces the first: new engineer
//     channels go to the new connection, while channels already spliced over
//     the old one run on until they end or that connection drops. When a
//     device connection drops, its registrations are freed at once, so the
//     device can register again on a new connection without delay.
//
//  4. The engineer's client dials the relay with any SSH user name that is
//     not of the device form "<fleet>/<device>" (the session id is a good
//     choice) and logs in with its session certificate (package sessioncert,
//     signed by [Config.UserCA]). The relay checks the certificate and that
//     the session it names is open and on the device it names. Why a login
//     was refused is sent to the client as an SSH authentication banner
//     (x/crypto clients see it through ssh.ClientConfig.BannerCallback).
//
//  5. The engineer opens a "direct-tcpip" channel (RFC 4254 §7.2) whose host
//     to connect is S; the port is not used (send 22 or 0). The relay opens a
//     "forwarded-tcpip" channel on the device connection that registered S,
//     with connected address S, connected port 0 and, as originator, the
//     engineer's IP address and port as the relay sees them, then joins the
//     two channels byte for byte, half-closes included. If no device has
//     registered S yet, the relay waits up to [Config.RegistrationWait] for
//     one, then rejects the channel with ssh.ConnectionFailed and the message
//     "the device has not connected to the relay for this session". Any
//     number of channels per session may run at once (a shell and an scp).
//     The device must accept or reject each forwarded-tcpip channel; it sees
//     them in the channel stream that ssh.NewClientConn returns (x/crypto's
//     Client.Listen cannot be used: it only matches IP addresses).
//
//  6. Inside the spliced channel the engineer's client runs SSH to the
//     device's embedded server, which checks the certificate again, and the
//     support code where the owner's consent mode asks for it.
//
// Everything else is refused, logged and reported to [Config.Refused]:
//
//   - from a device: every channel it opens (direct-tcpip, session, any
//     other), "tcpip-forward" for a session that is unknown, closed, or
//     addressed to another device, or with a port other than 0, and every
//     other global request. "keepalive@openssh.com" is answered with
//     failure, as OpenSSH does, and is not a refusal;
//   - from an engineer: every channel but "direct-tcpip" to the session of its
//     certificate, "tcpip-forward" and any other global request (again
//     except keepalives);
//   - at login: a device name with a key that is not the device's enrolled
//     key, or with a certificate; any other name with a bare key, a
//     certificate from another CA, an expired certificate, or one whose
//     session is unknown, closed, ended or on another device.
//
// # Ending
//
// [Relay.CloseSession] cuts a session at once: its registration is freed,
// every spliced channel is closed, the engineer connections of the session
// are closed (a session certificate is good for one session only), and a
// device connection left with no registration is closed too. A lookup of the
// session that was already under way when it was cut cannot bring it back.
// The relay also cuts a session by itself at its [Session.Ends], and closes an
// engineer's connection when its certificate expires. [Relay.DisconnectDevice]
// closes every connection of a deleted device.
//
// The relay sends "keepalive@openssh.com" to every client each
// [Config.KeepAliveInterval] and closes a connection that has left three in a
// row unanswered, so a device whose network vanished frees its registrations
// within a few intervals. Clients must therefore answer global requests (an
// x/crypto client that gets its requests from ssh.NewClientConn should pass
// them to ssh.DiscardRequests).
//
// # Activity
//
// The relay cannot see inside the channels, so it reports that the engineer
// opened a channel or sent bytes: [Config.Activity] is called at most once per
// [Config.ActivityInterval] per session, for the server's idle timeout. Bytes
// the engineer's SSH client sends by itself (its keepalives) count too; the
// device's embedded server, which sees the inner session, enforces the idle
// timeout precisely.
package relay
