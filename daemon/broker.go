package daemon

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/porthole/porthole/broker"
	"github.com/porthole/porthole/brokerclient"
	"github.com/porthole/porthole/ca"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/devicekeys"
	"github.com/porthole/porthole/presence"
)

// serverBrokerPassword is the password the nodes of a deployment log in
// with to the embedded broker of the node with the broker role
// (broker.ServerUsername): the node secret, which every node's data dir
// holds (an API node's from init, another's from init-node) and nothing
// else does, so no further secret is configured. A data dir made before
// the node secret was has the password derived from the control key that
// nodes used then (ca.Load), so that nodes of one deployment still agree.
func serverBrokerPassword(keys *ca.Keys) []byte { return []byte(keys.NodeSecret) }

// pinnedTLS reaches another node of the deployment: its certificate must
// be the one in data_dir, which every node shows (as devices pin it), so
// no CA is involved; ALPN mqtt, for a broker on the API's port too.
func pinnedTLS(keys *ca.Keys) *tls.Config {
	want := keys.TLS.Certificate[0]
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		NextProtos:         []string{"mqtt"},
		InsecureSkipVerify: true, // the pin below is the check
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want) {
				// A verification error: the client gives up at once.
				return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates,
					Err: errors.New("the broker node's certificate is not this deployment's (is broker.node another deployment's broker?)")}
			}
			return nil
		},
	}
}

// newBroker makes the embedded broker, authenticating devices with their
// keys from deviceKeys and reporting their presence to tracker. It accepts
// devices once Serve hands it a listener.
func newBroker(deviceKeys *devicekeys.Cache, keys *ca.Keys, tracker *presence.Tracker, logger *slog.Logger) (*broker.Broker, error) {
	b, err := broker.New(broker.Config{
		Logger:         logger,
		ServerPassword: serverBrokerPassword(keys),
		DeviceKey: func(ctx context.Context, fleet, device string) (ed25519.PublicKey, error) {
			key, err := deviceKeys.Key(ctx, fleet, device)
			if errors.Is(err, devicekeys.ErrUnknownDevice) {
				return nil, broker.ErrUnknownDevice
			}
			return key, err
		},
		Presence: tracker,
		// Queue and buffer sizes for many idle devices are the broker's
		// own defaults (DEPENDENCIES.md: about 26 KB per idle connection).
	})
	if err != nil {
		return nil, fmt.Errorf("starting the MQTT broker: %w", err)
	}
	return b, nil
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
// default, measured with 5,000 devices; deploy/mosquitto raises the queue,
// since a broker restart sends every device's live states at once too).
// So after every connection the node also takes a snapshot: a connection
// of its own with a plain subscription at QoS 0, which receives every retained state (50,000 in about a second
// from Mosquitto here), until the broker has been quiet for brokerclient.SnapshotQuiet
// (brokerclient.Client.Snapshot).
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
		s.extPresence.Apply(fleet, device, st)
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

// brokerPassword is the external broker's password: broker.password, or
// the first line of broker.password_file.
func brokerPassword(c BrokerConfig) (string, error) {
	if c.PasswordFile == "" {
		return c.Password, nil
	}
	data, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("reading broker.password_file: %w", err)
	}
	pw := strings.TrimRight(string(data), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("broker.password_file %s is empty", c.PasswordFile)
	}
	return pw, nil
}

// dynsecPassword is broker.dynamic_security's password: its password, or
// the first line of its password_file.
func dynsecPassword(d *DynsecConfig) (string, error) {
	if d.PasswordFile == "" {
		return d.Password, nil
	}
	data, err := os.ReadFile(d.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("reading broker.dynamic_security.password_file: %w", err)
	}
	pw := strings.TrimRight(string(data), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("broker.dynamic_security.password_file %s is empty", d.PasswordFile)
	}
	return pw, nil
}

// newBrokerClient makes the client of the external broker; it connects
// when Serve runs.
func newBrokerClient(c BrokerConfig, keys *ca.Keys, logger *slog.Logger) (*brokerclient.Client, error) {
	if c.Node != "" {
		client, err := brokerclient.New(brokerclient.Config{
			URL:        c.Node,
			Username:   broker.ServerUsername,
			Password:   string(serverBrokerPassword(keys)),
			TLS:        pinnedTLS(keys),
			ShareGroup: c.ShareGroup,
			Logger:     logger,
		})
		if err != nil {
			return nil, fmt.Errorf("the broker node (broker.node): %w", err)
		}
		return client, nil
	}
	password, err := brokerPassword(c)
	if err != nil {
		return nil, err
	}
	client, err := brokerclient.New(brokerclient.Config{
		URL:        c.URL,
		Username:   c.Username,
		Password:   password,
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
