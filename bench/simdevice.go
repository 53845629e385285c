package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/agent/agentretry"
	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
)

// What a simulated device says on the wire, copied from porthole-agent
// (agent/mqttclient.go) so the broker sees the same sessions: MQTT 5, a
// ping a minute, a persistent session the broker caps, a last will of
// "offline" on its state topic, its cmd subscription at QoS 1 and a
// retained "online" at QoS 1.
const (
	simKeepAlive      = 60
	simSessionExpiry  = uint32(control.MaxValidity / time.Second)
	simReceiveMaximum = 16
	simMaxPacketSize  = 64 << 10
	simConnectTimeout = 20 * time.Second // TLS, CONNECT and CONNACK
	simPublishTimeout = 10 * time.Second // SUBSCRIBE and PUBLISH, each
	// simPerSource is how many devices share one 127.0.0.x source address,
	// well under the ~28,000 ephemeral ports each address has.
	simPerSource = 20000
)

// simFleet is a crowd of simulated devices idling on one broker.
type simFleet struct {
	addr    string      // the broker's host:port
	tls     *tls.Config // pinned to the server's certificate, as the agent does
	backoff agentretry.Backoff
	devices []*simDevice

	online   atomic.Int64 // devices connected and subscribed now
	failures atomic.Int64 // failed connection attempts so far
	wg       sync.WaitGroup

	mu      sync.Mutex       // guards lastErr and kinds
	lastErr error            // why the latest failed attempt failed
	kinds   map[string]int64 // failed attempts by failureKind
	other   string           // the first failure of kind "other"
}

// simDevice is one enrolled device without an agent: a key, a name and a
// goroutine that keeps it connected.
type simDevice struct {
	f    *simFleet
	name string
	priv ed25519.PrivateKey
	src  net.IP
	// password, if set, is the device's own static broker password (an
	// external broker's password file, as agent.yaml's broker.password);
	// without it the device signs a fresh one with priv, as for the
	// embedded broker.
	password []byte
	lastUp   atomic.Int64 // UnixNano of the latest successful connection
	up       chan struct{}
	upOnce   sync.Once
}

// enrollSimDevices enrolls n devices named PREFIX-NNNNNN into the bench
// fleet through the API, each with its own ed25519 key, workers at a time,
// with an enrollment token of their own.
func enrollSimDevices(ctx context.Context, p *porthole, prefix string, n, workers int) (*simFleet, error) {
	anon, err := apiclient.New(p.url, apiclient.Options{Fingerprint: p.fp})
	if err != nil {
		return nil, err
	}
	tok, err := p.api.CreateEnrollmentToken(ctx, benchFleet, apitype.CreateEnrollmentTokenRequest{Uses: n})
	if err != nil {
		return nil, fmt.Errorf("creating an enrollment token for %d devices: %w", n, err)
	}
	f := &simFleet{
		addr:    fmt.Sprintf("127.0.0.1:%d", p.brokerPort),
		tls:     mqttTLS(newPinnedTLS(p.fp)),
		backoff: agentretry.Backoff{First: agentretry.DefaultFirst, Max: agentretry.DefaultMax},
		devices: make([]*simDevice, n),
	}
	for i := range f.devices {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		f.devices[i] = &simDevice{f: f, name: fmt.Sprintf("%s-%06d", prefix, i), priv: priv,
			src: net.IPv4(127, 0, 0, byte(2+i/simPerSource)), up: make(chan struct{})}
	}
	err = forEach(ctx, f.devices, workers, func(ctx context.Context, d *simDevice) error {
		pub, err := ssh.NewPublicKey(d.priv.Public())
		if err != nil {
			return err
		}
		_, err = anon.Enroll(ctx, apitype.EnrollRequest{Token: tok.Token, Name: d.name,
			PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))})
		if err != nil {
			return fmt.Errorf("enrolling %s: %w", d.name, err)
		}
		return nil
	})
	return f, err
}

// mqttTLS is cfg asking for MQTT by ALPN, as the agent does: the API's port
// routes by it, and a broker port ignores it.
func mqttTLS(cfg *tls.Config) *tls.Config {
	cfg.NextProtos = []string{"mqtt"}
	return cfg
}

// newPinnedTLS trusts only the server certificate with fingerprint fp, as
// the agent and the CLI do with the server's self-signed certificate.
func newPinnedTLS(fp string) *tls.Config {
	return &tls.Config{
		ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12,
		InsecureSkipVerify: true, // VerifyConnection's pin replaces the chain
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || apiclient.Fingerprint(cs.PeerCertificates[0]) != fp {
				return errors.New("the server's certificate is not the one pinned")
			}
			return nil
		},
	}
}

// forEach runs fn on every item, workers at a time, and returns the first
// error.
func forEach[T any](ctx context.Context, items []T, workers int, fn func(context.Context, T) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan T)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for it := range next {
				if err := fn(ctx, it); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for _, it := range items {
		select {
		case next <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return context.Cause(ctx)
}

// start connects every device, at most parallel connection attempts at a
// time for the first connection, and keeps each connected (reconnecting
// with the agent's backoff) until ctx ends. It returns once every device
// has connected once, or after timeout with the latest reason one could
// not.
func (f *simFleet) start(ctx context.Context, parallel int, timeout time.Duration) error {
	sem := make(chan struct{}, max(parallel, 1))
	expired := time.After(timeout)
	for _, d := range f.devices {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		f.wg.Go(func() { d.run(ctx, sem) })
	}
	for _, d := range f.devices {
		select {
		case <-d.up:
		case <-ctx.Done():
			return ctx.Err()
		case <-expired:
			f.mu.Lock()
			defer f.mu.Unlock()
			return fmt.Errorf("%s had not connected after %v (%d failed attempts; the latest: %v)", d.name, timeout, f.failures.Load(), f.lastErr)
		}
	}
	return nil
}

// wait waits for every device's goroutine, after ctx has ended.
func (f *simFleet) wait() { f.wg.Wait() }

// backSince counts the devices that have connected after t, and the latest
// of their connection times.
func (f *simFleet) backSince(t time.Time) (n int, last time.Time) {
	since := t.UnixNano()
	var latest int64
	for _, d := range f.devices {
		if up := d.lastUp.Load(); up > since {
			n++
			latest = max(latest, up)
		}
	}
	return n, time.Unix(0, latest)
}

// failed counts a failed connection attempt.
func (f *simFleet) failed(err error) {
	f.failures.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastErr = err
	if f.kinds == nil {
		f.kinds = map[string]int64{}
	}
	kind := failureKind(err)
	if kind == "other" {
		// Name the first such error, so the report says what it was.
		if f.other == "" {
			f.other = err.Error()
		}
		kind = "other, such as: " + f.other
	}
	f.kinds[kind]++
}

// failureKinds is a copy of the failed attempts counted by kind.
func (f *simFleet) failureKinds() map[string]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.kinds)
}

// failureKind sorts why a connection attempt failed, for the report.
func failureKind(err error) string {
	var ne net.Error
	var refused connackError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (no listener)"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the server"
	case errors.As(err, &refused):
		return fmt.Sprintf("CONNACK 0x%02x", byte(refused))
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	}
	return "other"
}

// connackError is a CONNECT refused with a reason code.
type connackError byte

func (e connackError) Error() string {
	return fmt.Sprintf("CONNECT refused with reason code 0x%02x", byte(e))
}

// run keeps the device connected. The first attempt holds a slot of sem;
// after a connection is lost it waits as porthole-agent does: anywhere
// below Backoff.First, then longer after each failed attempt.
func (d *simDevice) run(ctx context.Context, sem chan struct{}) {
	attempt := 0
	first := true
	for ctx.Err() == nil {
		if !first {
			t := time.NewTimer(d.f.backoff.Delay(attempt, mrand.Float64()))
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		conn, keepAlive, err := d.connect(ctx)
		if first {
			<-sem
			first = false
		}
		if err != nil {
			d.f.failed(err)
			attempt++
			continue
		}
		attempt = 0
		d.lastUp.Store(time.Now().UnixNano())
		d.upOnce.Do(func() { close(d.up) })
		d.f.online.Add(1)
		d.idle(ctx, conn, keepAlive)
		d.f.online.Add(-1)
	}
}

// connect makes one connection as the agent does: TLS, CONNECT with a
// fresh signed password and the last will, SUBSCRIBE to the cmd topic,
// PUBLISH "online". It returns the connection and the keep-alive the
// broker asked for.
func (d *simDevice) connect(ctx context.Context) (net.Conn, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, simConnectTimeout)
	defer cancel()
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: d.src}}
	raw, err := dialer.DialContext(ctx, "tcp", d.f.addr)
	if err != nil {
		return nil, 0, err
	}
	conn := tls.Client(raw, d.f.tls)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, 0, err
	}
	keepAlive, err := d.session(conn)
	if err != nil {
		conn.Close()
		return nil, 0, err
	}
	return conn, keepAlive, nil
}

// session speaks the MQTT of a device coming online on conn.
func (d *simDevice) session(conn net.Conn) (time.Duration, error) {
	username, err := control.DeviceUsername(benchFleet, d.name)
	if err != nil {
		return 0, err
	}
	cmdTopic, _ := control.CmdTopic(benchFleet, d.name)
	stateTopic, _ := control.StateTopic(benchFleet, d.name)
	offline, _ := control.State{Kind: control.StateOffline}.Marshal()
	online, _ := control.State{Kind: control.StateOnline}.Marshal()
	expiry, recvMax, maxPacket := simSessionExpiry, uint16(simReceiveMaximum), uint32(simMaxPacketSize)
	password := d.password
	if password == nil {
		password = []byte(control.DevicePassword(d.priv, benchFleet, d.name, time.Now()))
	}

	_ = conn.SetDeadline(time.Now().Add(simConnectTimeout))
	err = writePacket(conn, &packets.Connect{
		ProtocolName: "MQTT", ProtocolVersion: 5, KeepAlive: simKeepAlive,
		ClientID: username, Username: username, UsernameFlag: true,
		Password: password, PasswordFlag: true,
		WillFlag: true, WillQOS: 1, WillRetain: true, WillTopic: stateTopic, WillMessage: offline,
		WillProperties: &packets.Properties{},
		Properties: &packets.Properties{SessionExpiryInterval: &expiry, ReceiveMaximum: &recvMax,
			MaximumPacketSize: &maxPacket},
	})
	if err != nil {
		return 0, err
	}
	cp, err := packets.ReadPacket(conn)
	if err != nil {
		return 0, fmt.Errorf("reading CONNACK: %w", err)
	}
	ack, ok := cp.Content.(*packets.Connack)
	if !ok {
		return 0, fmt.Errorf("unexpected answer to CONNECT: %v", cp)
	}
	if ack.ReasonCode != packets.ConnackSuccess {
		return 0, connackError(ack.ReasonCode)
	}
	keepAlive := time.Duration(simKeepAlive) * time.Second
	if ack.Properties != nil && ack.Properties.ServerKeepAlive != nil && *ack.Properties.ServerKeepAlive > 0 {
		keepAlive = time.Duration(*ack.Properties.ServerKeepAlive) * time.Second
	}

	_ = conn.SetDeadline(time.Now().Add(simPublishTimeout))
	err = writePacket(conn, &packets.Subscribe{PacketID: 1, Properties: &packets.Properties{},
		Subscriptions: []packets.SubOptions{{Topic: cmdTopic, QoS: 1}}})
	if err != nil {
		return 0, err
	}
	if err := expect(conn, packets.SUBACK, func(c any) bool {
		s := c.(*packets.Suback)
		return len(s.Reasons) == 1 && s.Reasons[0] == 1
	}); err != nil {
		return 0, fmt.Errorf("subscribing: %w", err)
	}
	_ = conn.SetDeadline(time.Now().Add(simPublishTimeout))
	err = writePacket(conn, &packets.Publish{PacketID: 2, Topic: stateTopic, QoS: 1, Retain: true,
		Payload: online, Properties: &packets.Properties{}})
	if err != nil {
		return 0, err
	}
	if err := expect(conn, packets.PUBACK, func(c any) bool { return c.(*packets.Puback).ReasonCode < 0x80 }); err != nil {
		return 0, fmt.Errorf("publishing online: %w", err)
	}
	_ = conn.SetDeadline(time.Time{})
	return keepAlive, nil
}

// idle holds the connection as an idle agent does, pinging once per
// keep-alive, until the broker or ctx ends it.
func (d *simDevice) idle(ctx context.Context, conn net.Conn, keepAlive time.Duration) {
	var mu sync.Mutex // serialises writes: the pinger and PUBACKs
	write := func(p io.WriterTo) {
		mu.Lock()
		defer mu.Unlock()
		if err := writePacket(conn, p); err != nil {
			conn.Close()
		}
	}
	// Spread the pings so that a fleet that connected together does not
	// ping together.
	var ping *time.Timer
	ping = time.AfterFunc(time.Duration(mrand.Int64N(int64(keepAlive))), func() {
		write(&packets.Pingreq{})
		ping.Reset(keepAlive)
	})
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer func() {
		stop()
		ping.Stop()
		conn.Close()
	}()
	for {
		cp, err := packets.ReadPacket(conn)
		if err != nil {
			return
		}
		switch c := cp.Content.(type) {
		case *packets.Publish: // a command; simulated devices take none
			if c.QoS == 1 {
				write(&packets.Puback{PacketID: c.PacketID, Properties: &packets.Properties{}})
			}
		case *packets.Disconnect:
			return
		}
	}
}

// writePacket sends one MQTT packet in one write, so that it travels in
// one TLS record.
func writePacket(conn net.Conn, p io.WriterTo) error {
	var b bytes.Buffer
	if _, err := p.WriteTo(&b); err != nil {
		return err
	}
	_, err := conn.Write(b.Bytes())
	return err
}

// expect reads the next packet, which must be of type t and pass ok.
func expect(conn net.Conn, t byte, ok func(any) bool) error {
	cp, err := packets.ReadPacket(conn)
	if err != nil {
		return err
	}
	if cp.Type != t || !ok(cp.Content) {
		return fmt.Errorf("unexpected answer %v", cp)
	}
	return nil
}
