package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/porthole/porthole/broker"
	"github.com/porthole/porthole/brokerclient"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/presence"
	"github.com/porthole/porthole/store"
)

// newBroker makes the embedded broker, authenticating devices against st
// and reporting their presence to tracker. It accepts devices once Serve
// hands it a listener.
func newBroker(st store.Store, tracker *presence.Tracker, logger *slog.Logger) (*broker.Broker, error) {
	b, err := broker.New(broker.Config{
		Logger:    logger,
		DeviceKey: deviceKeys(st),
		Presence:  tracker,
		// Queue and buffer sizes for many idle devices are the broker's
		// own defaults (DEPENDENCIES.md: about 26 KB per idle connection).
	})
	if err != nil {
		return nil, fmt.Errorf("starting the MQTT broker: %w", err)
	}
	return b, nil
}

// deviceKeys looks up the enrolled key of a device by fleet and device
// name; a device that does not exist, deleted ones included, is
// broker.ErrUnknownDevice.
func deviceKeys(st store.Store) func(ctx context.Context, fleet, device string) (ed25519.PublicKey, error) {
	return func(ctx context.Context, fleet, device string) (ed25519.PublicKey, error) {
		ds, err := st.ListDevices(ctx, store.DeviceFilter{FleetName: fleet, Name: device})
		if err != nil {
			return nil, fmt.Errorf("looking up device %s/%s: %w", fleet, device, err)
		}
		for _, d := range ds {
			if d.FleetName == fleet && d.Name == device {
				return control.ParseDeviceKey(d.PublicKey)
			}
		}
		return nil, broker.ErrUnknownDevice
	}
}

// The control channel's state messages, in both modes.
//
// With the embedded broker, the server reads every device's state through
// the broker's in-process subscription; presence comes from the broker's
// connect and disconnect hooks, which see the TCP connection itself.
//
// With an external broker, the server node reads the states through an MQTT
// 5 shared subscription (brokerclient), so that of several nodes one handles
// each message, and presence comes from the states: "offline" (the last
// will the broker publishes when a device's connection ends, or the agent's
// goodbye) marks a device offline; any other state means it is connected.
// Each device's state is retained, so a node that connects (at start, or
// after losing the broker) learns every device's latest state. But the
// shared subscription is no way to learn them: the MQTT 5 standard says
// retained messages are not sent to shared subscriptions (AWS IoT Core
// follows it), and Mosquitto 2.0, which sends them, replays them at the
// subscription's QoS 1 and drops what exceeds the client's queue
// (max_inflight_messages plus max_queued_messages: 1020 messages by
// default, measured with 5,000 devices). So after every connection the node
// also takes a snapshot: a connection of its own with a plain subscription
// at QoS 0, which receives every retained state (50,000 in about a second
// from Mosquitto here), until the broker has been quiet for snapshotQuiet.
// A state may so reach the handlers twice; they apply states, not count
// them.

// stateLogEvery limits warnings about malformed state messages, which a
// broken or hostile device could send in a stream.
const stateLogEvery = time.Second

// handleState reads one message on a state topic and hands it on: to
// presence (external broker only) and to every onState handler. Malformed
// messages are logged and dropped. It runs on the broker's or the broker
// client's delivering goroutine.
func (s *Server) handleState(topic string, payload []byte) {
	fleet, device, ok := control.ParseStateTopic(topic)
	if !ok {
		s.stateWarn("state message on a topic that names no valid fleet and device dropped", "topic", topic)
		return
	}
	if len(payload) == 0 {
		return // a retained state being cleared, not a state
	}
	st, err := control.ParseState(payload)
	if err != nil {
		s.stateWarn("malformed state message dropped", "fleet", fleet, "device", device, "bytes", len(payload), "err", err)
		return
	}
	if s.extPresence != nil {
		s.extPresence.apply(fleet, device, st)
	}
	for _, h := range s.onState {
		s.callStateHandler(h, fleet, device, st)
	}
}

// callStateHandler runs one handler, so that a bug in it is logged rather
// than taking the broker's goroutine, and the server, down.
func (s *Server) callStateHandler(h func(fleet, device string, st control.State), fleet, device string, st control.State) {
	defer func() {
		if r := recover(); r != nil {
			s.logger.Error("a state handler panicked", "fleet", fleet, "device", device, "state", st.Kind, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	h(fleet, device, st)
}

// stateWarn logs a dropped state message, at most once per stateLogEvery,
// counting the ones it leaves out.
func (s *Server) stateWarn(msg string, args ...any) {
	s.stateLogMu.Lock()
	now := time.Now()
	if now.Before(s.stateLogNext) {
		s.stateLogSkipped++
		s.stateLogMu.Unlock()
		return
	}
	skipped := s.stateLogSkipped
	s.stateLogNext, s.stateLogSkipped = now.Add(stateLogEvery), 0
	s.stateLogMu.Unlock()
	if skipped > 0 {
		args = append(args, "similar_dropped_before", skipped)
	}
	s.logger.Warn(msg, args...)
}

// statePresence turns the states read from an external broker into
// presence. It remembers which devices this node has seen connected, so
// that each connection is one DeviceConnected, and so that the "offline" a
// (re)subscription replays for a device that left long ago does not move
// its last-seen time to now.
type statePresence struct {
	tracker broker.PresenceHandler
	now     func() time.Time

	mu     sync.Mutex
	online map[string]bool // guarded by mu; "<fleet>/<device>" this node holds connected
}

func newStatePresence(tracker broker.PresenceHandler) *statePresence {
	return &statePresence{tracker: tracker, now: time.Now, online: make(map[string]bool)}
}

// apply records one state. The tracker is called under mu so that two
// goroutines delivering states of one device (the shared subscription and
// a snapshot) cannot reorder them; its calls never block.
func (p *statePresence) apply(fleet, device string, st control.State) {
	key := fleet + "/" + device
	p.mu.Lock()
	defer p.mu.Unlock()
	was := p.online[key]
	if st.Kind == control.StateOffline {
		delete(p.online, key)
		// Seen leaving now, or a replayed retained "offline" of a device
		// gone for who knows how long: the zero time keeps its last-seen.
		var at time.Time
		if was {
			at = p.now()
		}
		p.tracker.DeviceDisconnected(fleet, device, at)
		return
	}
	if !was {
		p.online[key] = true
		p.tracker.DeviceConnected(fleet, device, p.now())
	}
}

// forget drops what is known of a device, deleted: a device enrolled again
// under its name is a new connection to record.
func (p *statePresence) forget(fleet, device string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.online, fleet+"/"+device)
}

// externalBroker is the validated connection settings of an external
// broker, with the TLS files and the password file loaded.
type externalBroker struct {
	url      *url.URL // with the scheme's default port filled in
	tls      *tls.Config
	username string
	password string
	logger   *slog.Logger
}

// loadExternalBroker reads the files an external broker's config names,
// so that a mistake is reported at start, naming the key.
func loadExternalBroker(c BrokerConfig, logger *slog.Logger) (*externalBroker, error) {
	u, err := checkBrokerURL("broker.url", c.URL)
	if err != nil {
		return nil, err
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"mqtt": "1883", "mqtts": "8883"}[u.Scheme]
	}
	e := &externalBroker{
		url:      &url.URL{Scheme: u.Scheme, Host: net.JoinHostPort(u.Hostname(), port)},
		username: c.Username,
		password: c.Password,
		logger:   logger,
	}
	if c.PasswordFile != "" {
		data, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("reading broker.password_file: %w", err)
		}
		e.password = strings.TrimRight(string(data), "\r\n")
		if e.password == "" {
			return nil, fmt.Errorf("broker.password_file %s is empty", c.PasswordFile)
		}
	}
	if u.Scheme == "mqtts" {
		e.tls = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return nil, fmt.Errorf("reading broker.ca_file: %w", err)
			}
			e.tls.RootCAs = x509.NewCertPool()
			if !e.tls.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("broker.ca_file %s holds no PEM certificate", c.CAFile)
			}
		}
		if c.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("broker.cert_file %s and broker.key_file %s are not a certificate and its key: %w", c.CertFile, c.KeyFile, err)
			}
			e.tls.Certificates = []tls.Certificate{cert}
		}
	}
	return e, nil
}

// newBrokerClient makes the client of the external broker; it connects
// when Serve runs.
func newBrokerClient(c BrokerConfig, e *externalBroker, logger *slog.Logger) (*brokerclient.Client, error) {
	client, err := brokerclient.New(brokerclient.Config{
		URL:        c.URL,
		Username:   e.username,
		Password:   e.password,
		CAFile:     c.CAFile,
		CertFile:   c.CertFile,
		KeyFile:    c.KeyFile,
		ShareGroup: c.ShareGroup,
		Logger:     logger,
	})
	if err != nil {
		return nil, fmt.Errorf("the external MQTT broker (broker.url): %w", err)
	}
	return client, nil
}

// Limits of a snapshot of the retained states.
const (
	// snapshotQuiet is how long the broker must send nothing more before
	// the snapshot is taken to be complete. A broker sends the retained
	// messages of a subscription at once, so a pause this long means it is
	// done.
	snapshotQuiet = 500 * time.Millisecond
	// snapshotMax bounds a snapshot of a very large fleet, or of a broker
	// that never falls quiet.
	snapshotMax = 5 * time.Minute
	// snapshotTimeout bounds each step of the snapshot's connection.
	snapshotTimeout = 10 * time.Second
)

// errSnapshotRefused: the broker refused the plain subscription of a
// snapshot (its ACL or policy allows this node only the shared one).
var errSnapshotRefused = errors.New("the MQTT broker refused a plain subscription to the state topics")

// snapshot reads every retained state message from the broker through a
// plain subscription at QoS 0 on a connection of its own, handing each one
// (and any live one arriving meanwhile, so that one device's states reach
// handle in order) to handle, until the broker has been quiet for quiet. It
// returns how many messages it handed on.
func (e *externalBroker) snapshot(ctx context.Context, quiet time.Duration, handle func(topic string, payload []byte)) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, snapshotMax)
	defer cancel()
	dialer := &net.Dialer{Timeout: snapshotTimeout}
	var conn net.Conn
	var err error
	if e.tls != nil {
		conn, err = (&tls.Dialer{NetDialer: dialer, Config: e.tls}).DialContext(ctx, "tcp", e.url.Host)
	} else {
		conn, err = dialer.DialContext(ctx, "tcp", e.url.Host)
	}
	if err != nil {
		return 0, fmt.Errorf("connecting to %s: %w", e.url, err)
	}
	defer conn.Close()

	var (
		mu   sync.Mutex
		done bool      // guarded by mu; set once the snapshot is over
		n    int       // guarded by mu
		last time.Time // guarded by mu; when the latest message arrived
	)
	client := paho.NewClient(paho.ClientConfig{
		Conn:          packets.NewThreadSafeConn(conn),
		PacketTimeout: snapshotTimeout,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			if !done {
				n++
				last = time.Now()
				handle(pr.Packet.Topic, pr.Packet.Payload)
			}
			return true, nil
		}},
	})
	id, err := snapshotClientID()
	if err != nil {
		return 0, err
	}
	stepCtx, stepCancel := context.WithTimeout(ctx, snapshotTimeout)
	defer stepCancel()
	if _, err := client.Connect(stepCtx, &paho.Connect{
		ClientID: id, CleanStart: true, KeepAlive: 30,
		Username: e.username, UsernameFlag: e.username != "",
		Password: []byte(e.password), PasswordFlag: e.password != "",
	}); err != nil {
		return 0, fmt.Errorf("logging in to %s: %w", e.url, err)
	}
	defer func() {
		_ = client.Disconnect(&paho.Disconnect{})
		<-client.Done()
	}()

	mu.Lock()
	last = time.Now()
	mu.Unlock()
	ack, err := client.Subscribe(stepCtx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: control.StateFilter, QoS: 0}}})
	if ack != nil && len(ack.Reasons) > 0 && ack.Reasons[0] >= 0x80 {
		return 0, fmt.Errorf("%w %s (reason code %#x); allow it to read state messages of devices without $share/, or presence after a restart comes only from each device's next message", errSnapshotRefused, control.StateFilter, ack.Reasons[0])
	}
	if err != nil {
		return 0, fmt.Errorf("subscribing to %s: %w", control.StateFilter, err)
	}

	timer := time.NewTimer(quiet)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-client.Done():
			return 0, fmt.Errorf("the connection to %s dropped during the snapshot", e.url)
		case <-ctx.Done():
			mu.Lock()
			done = true
			mu.Unlock()
			return n, fmt.Errorf("the snapshot of retained states ended early: %w", ctx.Err())
		}
		mu.Lock()
		if wait := quiet - time.Since(last); wait > 0 {
			mu.Unlock()
			timer.Reset(wait)
			continue
		}
		done = true
		count := n
		mu.Unlock()
		return count, nil
	}
}

// snapshotClientID is a client id of its own for each snapshot, with the
// prefix a broker's ACL or policy allows server nodes by.
func snapshotClientID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("making a client id: %w", err)
	}
	return brokerclient.ClientIDPrefix + "snapshot-" + hex.EncodeToString(b[:]), nil
}
