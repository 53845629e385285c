package brokerclient

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	"github.com/porthole/porthole/control"
)

// Limits of a snapshot of the retained states.
const (
	// SnapshotQuiet is how long the broker must send nothing more before
	// a snapshot is taken to be complete. A broker sends the retained
	// messages of a subscription at once, so a pause this long means it is
	// done.
	SnapshotQuiet = 500 * time.Millisecond
	// snapshotMax bounds a snapshot of a very large fleet, or of a broker
	// that never falls quiet.
	snapshotMax = 5 * time.Minute
	// snapshotTimeout bounds each step of the snapshot's connection.
	snapshotTimeout = 10 * time.Second
)

// ErrSnapshotRefused: the broker refused the plain subscription of a
// snapshot (its ACL or policy allows this node only the shared one).
var ErrSnapshotRefused = errors.New("the MQTT broker refused a plain subscription to the state topics")

// Snapshot reads every retained state message from the broker through a
// plain subscription at QoS 0 on a connection of its own (a shared
// subscription gets no retained messages), handing each one (and any live
// one arriving meanwhile, so that one device's states reach handle in
// order) to handle, until the broker has been quiet for quiet (zero:
// SnapshotQuiet). It returns how many messages it handed on. A server node
// takes one after each (re)connection, so that presence comes back without
// waiting for every device's next message.
func (c *Client) Snapshot(ctx context.Context, quiet time.Duration, handle func(topic string, payload []byte)) (int, error) {
	if quiet == 0 {
		quiet = SnapshotQuiet
	}
	e := c.s
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
		Username: e.Username, UsernameFlag: e.Username != "",
		Password: []byte(e.Password), PasswordFlag: e.Password != "",
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
		return 0, fmt.Errorf("%w %s (reason code %#x); allow it to read state messages of devices without $share/, or presence after a restart comes only from each device's next message", ErrSnapshotRefused, control.StateFilter, ack.Reasons[0])
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
	return ClientIDPrefix + "snapshot-" + hex.EncodeToString(b[:]), nil
}
