package broker

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/porthole/porthole/control"
)

// identity is what authentication proved about a connection, with the only
// two topics it may use worked out once.
type identity struct {
	fleet, device string
	username      string // "<fleet>/<device>", also its MQTT client id
	cmdTopic      string // the one filter it may subscribe to
	stateTopic    string // the one topic it may publish to
	// server: another portholed node of the deployment (ServerUsername),
	// which may read every device's state and send every device commands
	// (signed by the control key, which the devices check), and nothing
	// else; it is no device, and has no presence.
	server bool
}

func newIdentity(fleet, device, username string) (*identity, error) {
	cmd, err := control.CmdTopic(fleet, device)
	if err != nil {
		return nil, err
	}
	state, err := control.StateTopic(fleet, device)
	if err != nil {
		return nil, err
	}
	return &identity{fleet: fleet, device: device, username: username, cmdTopic: cmd, stateTopic: state}, nil
}

// identityOf is the proven identity of a client, or nil for one that is not
// authenticated or did not come through our listener.
func identityOf(cl *mqtt.Client) *identity {
	dc, ok := cl.Net.Conn.(*deviceConn)
	if !ok {
		return nil
	}
	return dc.identity.Load()
}

// refusal is why a CONNECT was refused: the reason code the device gets, and
// the detail and level only the log gets.
type refusal struct {
	code  packets.Code
	level slog.Level
	err   error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

func refuse(code packets.Code, level slog.Level, err error) *refusal {
	return &refusal{code: code, level: level, err: err}
}

// hook is the broker's mochi hook: authentication, ACL, presence, and a
// repair of mochi's flow control (flow.go).
type hook struct {
	mqtt.HookBase
	b     *Broker
	saved sync.Map // savedKey → packets.Packet: see flow.go
}

func (h *hook) ID() string { return "porthole" }

func (h *hook) Provides(event byte) bool {
	switch event {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSessionEstablish, mqtt.OnSessionEstablished,
		mqtt.OnPacketRead, mqtt.OnPacketProcessed, mqtt.OnDisconnect:
		return true
	}
	return false
}

// OnConnect authenticates a CONNECT and, if it passes, records the identity
// on the connection, pins the client id and sets the keep-alive. It runs
// before mochi's own authentication step so it can choose the CONNACK reason
// code; mochi then closes the connection.
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	dc, ok := cl.Net.Conn.(*deviceConn)
	if !ok {
		return h.refuseConnect(cl, refuse(packets.ErrNotAuthorized, slog.LevelError, errors.New("connection did not come through the broker's listener")))
	}
	keepAlive, r := h.b.keepAlive(pk)
	if r != nil {
		return h.refuseConnect(cl, r)
	}
	id, r := h.b.authenticate(pk)
	if r != nil {
		return h.refuseConnect(cl, r)
	}
	cl.ID = id.username // one session per device: a new connection takes over the old one
	if pk.Connect.ClientIdentifier == "" {
		cl.Properties.Props.AssignedClientID = id.username
	}
	cl.State.Keepalive = keepAlive
	cl.State.ServerKeepalive = keepAlive != pk.Connect.Keepalive
	dc.identity.Store(id)
	return nil
}

func (h *hook) refuseConnect(cl *mqtt.Client, r *refusal) error {
	h.b.log.Log(context.Background(), r.level, "MQTT connection refused", "remote", cl.Net.Remote, "code", r.code.Reason, "err", r.err)
	code := r.code
	if _, ok := packets.V5CodesToV3[code]; !ok && cl.Properties.ProtocolVersion < 5 {
		// MQTT 3.1.1 has five refusal codes, and mochi translates only the
		// reasons it can map; this one becomes 5, not authorized.
		code = packets.ErrBadUsernameOrPassword
	}
	if err := h.b.server.SendConnack(cl, code, false, nil); err != nil {
		h.b.log.Debug("sending the refusal failed", "remote", cl.Net.Remote, "err", err)
	}
	return r
}

// OnConnectAuthenticate admits exactly the clients OnConnect authenticated.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	return identityOf(cl) != nil
}

// OnACLCheck lets a device publish only to its own state topic, and
// subscribe to (and receive) only its own cmd topic, spelled exactly: a
// wildcard or shared-subscription filter never equals either. A server
// node may publish only to cmd topics and read only states.
func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	id := identityOf(cl)
	if id == nil {
		return false
	}
	if id.server {
		if serverMay(topic, write) {
			return true
		}
		h.b.log.Info("MQTT topic refused to a server node", "client", cl.ID, "topic", topic, "publish", write)
		return false
	}
	want := id.cmdTopic
	if write {
		want = id.stateTopic
	}
	if topic == want {
		return true
	}
	h.b.log.Debug("MQTT topic refused", "fleet", id.fleet, "device", id.device, "topic", topic, "publish", write)
	return false
}

// OnSessionEstablish runs once the client is authenticated, just before
// mochi cuts any older connection of the same device.
func (h *hook) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	if dc, ok := cl.Net.Conn.(*deviceConn); ok {
		h.b.presence.claim(dc)
	}
}

// OnSessionEstablished runs after the CONNACK went out: the device is online.
func (h *hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	if dc, ok := cl.Net.Conn.(*deviceConn); ok {
		h.b.presence.established(dc)
	}
}

// authenticate checks a CONNECT, cheapest checks first, and returns the
// proven identity or a *refusal.
func (b *Broker) authenticate(pk packets.Packet) (*identity, *refusal) {
	c := pk.Connect
	if pk.Properties.AuthenticationMethod != "" {
		return nil, refuse(packets.ErrBadAuthenticationMethod, slog.LevelDebug,
			fmt.Errorf("client asked for MQTT 5 enhanced authentication %q, which Porthole does not use", pk.Properties.AuthenticationMethod))
	}
	if !c.UsernameFlag || !c.PasswordFlag {
		return nil, refuse(packets.ErrBadUsernameOrPassword, slog.LevelDebug, errors.New("no username or no password"))
	}
	username := string(c.Username)
	if username == ServerUsername {
		return b.authenticateServer(pk)
	}
	fleet, device, ok := control.ParseDeviceUsername(username)
	if !ok {
		return nil, refuse(packets.ErrBadUsernameOrPassword, slog.LevelDebug, errors.New("username is not <fleet>/<device>"))
	}
	id, err := newIdentity(fleet, device, username)
	if err != nil {
		return nil, refuse(packets.ErrBadUsernameOrPassword, slog.LevelDebug, err)
	}
	if c.ClientIdentifier != "" && c.ClientIdentifier != username {
		return nil, refuse(packets.ErrClientIdentifierNotValid, slog.LevelDebug,
			fmt.Errorf("device %s sent client id %q; it must be its username or empty", username, c.ClientIdentifier))
	}
	if c.WillFlag && c.WillTopic != id.stateTopic {
		return nil, refuse(packets.ErrNotAuthorized, slog.LevelDebug,
			fmt.Errorf("device %s set its last will on %q; only %q is allowed", username, c.WillTopic, id.stateTopic))
	}

	ctx, cancel := context.WithTimeout(b.ctx, b.cfg.ConnectTimeout)
	defer cancel()
	key, err := b.cfg.DeviceKey(ctx, fleet, device)
	switch {
	case errors.Is(err, ErrUnknownDevice):
		return nil, refuse(packets.ErrBadUsernameOrPassword, slog.LevelDebug, fmt.Errorf("device %s does not exist (never enrolled, or deleted)", username))
	case err != nil:
		return nil, refuse(packets.ErrServerUnavailable, slog.LevelWarn, fmt.Errorf("looking up the key of device %s: %w", username, err))
	}
	if err := control.CheckDevicePassword(key, fleet, device, string(c.Password), b.cfg.Now()); err != nil {
		return nil, refuse(packets.ErrBadUsernameOrPassword, slog.LevelInfo, fmt.Errorf("device %s: %w", username, err))
	}
	return id, nil
}

// keepAlive is the keep-alive in seconds the broker grants for pk: the one
// asked for, raised to MinKeepAlive; for MQTT 5, lowered to MaxKeepAlive
// and none taken as the maximum (the CONNACK tells the client). An MQTT 3.1.1
// client cannot be told, and would be dropped between its pings, so one
// asking for none or for more than the maximum is refused instead.
func (b *Broker) keepAlive(pk packets.Packet) (uint16, *refusal) {
	asked := pk.Connect.Keepalive
	lo, hi := uint16(b.cfg.MinKeepAlive/time.Second), uint16(b.cfg.MaxKeepAlive/time.Second)
	switch {
	case asked != 0 && asked <= hi:
		return max(asked, lo), nil
	case pk.ProtocolVersion >= 5:
		return hi, nil
	}
	return 0, refuse(packets.ErrNotAuthorized, slog.LevelInfo,
		fmt.Errorf("MQTT 3.1.1 client asked for keep-alive %d s; it must be 1 to %d s", asked, hi))
}

// ServerUsername is the login of the other portholed nodes of a deployment
// (those without the broker role) to the embedded broker, with
// Config.ServerPassword. It has no "/", so no device is named so.
const ServerUsername = "portholed"

// authenticateServer checks a server node's CONNECT: the password every
// node derives from the deployment's keys, and a client id of its own
// that no device could hold.
func (b *Broker) authenticateServer(pk packets.Packet) (*identity, *refusal) {
	c := pk.Connect
	if len(b.cfg.ServerPassword) == 0 {
		return nil, refuse(packets.ErrBadUsernameOrPassword, slog.LevelInfo, errors.New("a server node tried to log in, but this broker takes no server logins"))
	}
	if subtle.ConstantTimeCompare(c.Password, b.cfg.ServerPassword) != 1 {
		return nil, refuse(packets.ErrBadUsernameOrPassword, slog.LevelWarn, errors.New("a server node's login with the wrong password (is its data directory another deployment's?)"))
	}
	id := string(c.ClientIdentifier)
	if !strings.HasPrefix(id, serverClientPrefix) || strings.Contains(id, "/") || len(id) > 128 {
		return nil, refuse(packets.ErrClientIdentifierNotValid, slog.LevelInfo,
			fmt.Errorf("a server node sent client id %q; it must start with %q and hold no '/'", id, serverClientPrefix))
	}
	if c.WillFlag {
		return nil, refuse(packets.ErrNotAuthorized, slog.LevelInfo, errors.New("a server node set a last will; it may publish commands only"))
	}
	return &identity{username: id, server: true}, nil
}

// serverClientPrefix begins a server node's client id (brokerclient's
// default).
const serverClientPrefix = "portholed-"

// serverMay reports whether a server node may publish to (write) or read
// topic: commands out, states in, the states also through a shared
// subscription.
func serverMay(topic string, write bool) bool {
	if write {
		_, _, ok := control.ParseCmdTopic(topic)
		return ok
	}
	if topic == control.StateFilter {
		return true
	}
	if rest, ok := strings.CutPrefix(topic, "$share/"); ok {
		group, filter, ok := strings.Cut(rest, "/")
		return ok && control.ValidName(group) && filter == control.StateFilter
	}
	_, _, ok := control.ParseStateTopic(topic)
	return ok
}
