package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/porthole/porthole/control"
)

// ErrClosed is returned by a Broker's methods after Close, and by Serve when
// Close ends it.
var ErrClosed = fmt.Errorf("broker: %w", net.ErrClosed)

// PubSub is what the server needs from a broker to drive devices: publish
// commands, read states. *Broker implements it in process; a client of an
// external broker can implement it too.
type PubSub interface {
	Publish(topic string, payload []byte, retain bool, qos byte) error
	Subscribe(filter string, handler func(topic string, payload []byte)) error
}

var _ PubSub = (*Broker)(nil)

const (
	// sysTopicInterval: devices may not read $SYS and each refresh stops the
	// world to read memory statistics, so refresh rarely.
	sysTopicInterval = 24 * 60 * 60 // seconds
	// receiveMaximum bounds the QoS 1 messages a device may leave
	// unacknowledged; a device sends a state now and then. maxInflight
	// bounds those the broker holds for a device: sent and unacknowledged,
	// or held back while the device's own Receive Maximum is used up. It
	// is what a burst of commands may reach (an open and a close for each
	// of a hundred sessions asked at once); past it, mochi drops commands.
	receiveMaximum = 16
	maxInflight    = 256
	// closeWriteGrace is how long Close waits on a device that does not read
	// its DISCONNECT.
	closeWriteGrace = time.Second
	// publishOverhead bounds a PUBLISH packet's bytes besides topic and
	// payload (fixed header, lengths, packet id, MQTT 5 properties).
	publishOverhead = 64
)

// Broker is Porthole's embedded MQTT broker. Create it with New, hand it
// listeners with Serve, and stop it with Close. Its methods are safe for
// concurrent use.
type Broker struct {
	cfg      Config
	log      *slog.Logger
	server   *mqtt.Server
	presence *presence
	ctx      context.Context // ends at Close; bounds DeviceKey lookups
	cancel   context.CancelFunc
	subIDs   atomic.Int64 // last id given to an in-process subscription

	mu        sync.Mutex
	closed    bool        // guarded by mu
	listeners []*listener // guarded by mu
}

// New makes a broker and starts its housekeeping; it accepts devices once
// Serve is given a listener. Publish and Subscribe work at once.
func New(cfg Config) (*Broker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "broker"),
		presence: newPresence(cfg.Presence, cfg.Now),
		ctx:      ctx,
		cancel:   cancel,
	}
	b.server = mqtt.New(&mqtt.Options{
		Capabilities:             capabilities(cfg),
		ClientNetWriteBufferSize: cfg.BufferSize,
		ClientNetReadBufferSize:  cfg.BufferSize,
		// mochi logs client misbehaviour as warnings: any client could
		// flood the operator's log. Our hook logs what matters.
		Logger:                 slog.New(debugOnly{cfg.Logger.With("component", "mochi").Handler()}),
		SysTopicResendInterval: sysTopicInterval,
		InlineClient:           true,
	})
	if err := b.server.AddHook(&hook{b: b}, nil); err != nil {
		cancel()
		return nil, fmt.Errorf("broker: adding the auth hook: %w", err)
	}
	if err := b.server.Serve(); err != nil {
		cancel()
		_ = b.server.Close()
		return nil, fmt.Errorf("broker: starting: %w", err)
	}
	return b, nil
}

// capabilities tunes mochi for many idle devices and only the features the
// control channel uses.
func capabilities(cfg Config) *mqtt.Capabilities {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClients = math.MaxInt64
	if cfg.MaxClients > 0 {
		caps.MaximumClients = int64(cfg.MaxClients)
	}
	caps.MaximumPacketSize = uint32(cfg.MaxPacketSize)
	caps.MaximumClientWritesPending = int32(cfg.WritesPending)
	caps.MaximumSessionExpiryInterval = 0 // no session outlives its connection
	caps.MaximumMessageExpiryInterval = 0 // a retained state stays until the device replaces it
	caps.ReceiveMaximum = receiveMaximum
	caps.MaximumInflight = maxInflight
	caps.TopicAliasMaximum = 0
	caps.MaximumQos = 1
	caps.MinimumProtocolVersion = 4 // MQTT 3.1.1
	return caps
}

// Serve accepts device connections on ln (TLS in production) until Close.
// It always closes ln and returns a non-nil error: ErrClosed after Close.
// Serve may be called for several listeners at once.
func (b *Broker) Serve(ln net.Listener) error {
	l, err := b.addListener(ln)
	if err != nil {
		_ = ln.Close()
		return err
	}
	err = l.serve(b.server.EstablishConnection)
	_ = ln.Close()
	return err
}

func (b *Broker) addListener(ln net.Listener) (*listener, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	id := "listener-" + strconv.Itoa(len(b.listeners)+1)
	l := &listener{
		id:             id,
		ln:             ln,
		log:            b.log.With("listener", id),
		connectTimeout: b.cfg.ConnectTimeout,
		ended:          b.connectionEnded,
		conns:          make(map[*deviceConn]struct{}),
	}
	// Registered with mochi so its Close closes l (and l's clients).
	if err := b.server.AddListener(l); err != nil {
		return nil, fmt.Errorf("broker: adding listener %s: %w", ln.Addr(), err)
	}
	b.listeners = append(b.listeners, l)
	return l, nil
}

func (b *Broker) connectionEnded(dc *deviceConn, err error) {
	b.presence.ended(dc)
	if id := dc.identity.Load(); id != nil {
		b.log.Debug("device disconnected", "fleet", id.fleet, "device", id.device, "remote", dc.RemoteAddr(), "err", err)
	}
}

// Close disconnects every device, stops accepting, and returns once all
// connection goroutines (and their presence calls) are done. A second call
// returns ErrClosed.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return ErrClosed
	}
	b.closed = true
	ls := b.listeners
	b.mu.Unlock()

	b.cancel()
	err := b.server.Close() // closes every listener and disconnects their clients
	for _, l := range ls {
		l.wg.Wait()
	}
	if err != nil {
		return fmt.Errorf("broker: closing: %w", err)
	}
	return nil
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// Publish sends payload to the devices subscribed to topic, at QoS 0 or 1,
// bypassing the ACL. It does not wait for delivery: a device that is offline
// simply misses the message (unless retain keeps it for the next
// subscriber). Publish does not keep payload.
func (b *Broker) Publish(topic string, payload []byte, retain bool, qos byte) error {
	switch {
	case b.isClosed():
		return ErrClosed
	case topic == "" || strings.ContainsAny(topic, "+#"):
		return fmt.Errorf("broker: cannot publish to %q: a topic name is not empty and has no wildcards", topic)
	case qos > 1:
		return fmt.Errorf("broker: cannot publish at QoS %d: the broker supports 0 and 1", qos)
	case len(topic)+len(payload)+publishOverhead > b.cfg.MaxPacketSize:
		return fmt.Errorf("broker: cannot publish %d bytes to %s: packets are limited to %d bytes", len(payload), topic, b.cfg.MaxPacketSize)
	}
	if err := b.server.Publish(topic, payload, retain, qos); err != nil {
		return fmt.Errorf("broker: publishing to %s: %w", topic, err)
	}
	return nil
}

// Subscribe calls handler for every message published on a topic matching
// filter (wildcards allowed), including the retained ones at once, before
// Subscribe returns. handler runs on the publishing device's connection
// goroutine, so it should be quick; payload is its own copy.
func (b *Broker) Subscribe(filter string, handler func(topic string, payload []byte)) error {
	if b.isClosed() {
		return ErrClosed
	}
	if handler == nil {
		return errors.New("broker: Subscribe needs a handler")
	}
	id := int(b.subIDs.Add(1))
	err := b.server.Subscribe(filter, id, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		handler(pk.TopicName, bytes.Clone(pk.Payload))
	})
	if err != nil {
		return fmt.Errorf("broker: subscribing to %q: %w", filter, err)
	}
	return nil
}

// Devices lists the devices connected now, as fleet and device names.
func (b *Broker) Devices() [][2]string {
	if b.isClosed() {
		return nil
	}
	var out [][2]string
	for _, cl := range b.server.Clients.GetAll() {
		if id := identityOf(cl); id != nil && !id.server && !cl.Closed() {
			out = append(out, [2]string{id.fleet, id.device})
		}
	}
	return out
}

// Disconnect ends the connection of a device, if it has one, and reports
// whether it had. Call it after deleting a device: the deleted device cannot
// log in again, but its open connection would otherwise stay.
func (b *Broker) Disconnect(fleet, device string) bool {
	username, err := control.DeviceUsername(fleet, device)
	if err != nil || b.isClosed() {
		return false
	}
	cl, ok := b.server.Clients.Get(username)
	if !ok || cl.Closed() {
		return false
	}
	_ = b.server.DisconnectClient(cl, packets.ErrAdministrativeAction)
	return true
}
