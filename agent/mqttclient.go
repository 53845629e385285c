package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"

	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/proxydial"
	"github.com/porthole/porthole/relay/relayproto"
)

const (
	// keepAliveSeconds: one ping a minute from an idle device; the broker
	// drops a silent one after 1.5 keep-alives.
	keepAliveSeconds = 60
	// sessionExpirySeconds: how long a broker that keeps sessions holds
	// this device's queued commands. A command is never valid longer.
	sessionExpirySeconds = uint32(control.MaxValidity / time.Second)
	// receiveMaximum bounds the commands in flight to the device. A device
	// sees one now and then, but many sessions may be asked of it at once:
	// as many as the server's embedded broker holds for a device (256), so
	// that it never holds back a command for want of the device's quota,
	// which mochi does unreliably (package broker's flow.go). The agent
	// acknowledges a command once its inbox takes it.
	receiveMaximum = 256
	// maxPacketSize asks the broker not to send more than this: a command
	// envelope is at most control.MaxEnvelopeSize, and one somewhat larger
	// must still arrive to be rejected as too large.
	maxPacketSize = 64 << 10
	// inboxSize is how many received commands may wait for the worker.
	inboxSize = 32
	// inboxWait is how long a command waits for room in the inbox before
	// it is dropped: the worker handles a command in moments, unless it
	// waits for the broker to take a state message (publishTimeout).
	inboxWait = publishTimeout + 5*time.Second
	// connectTimeout bounds TLS, CONNECT and CONNACK.
	connectTimeout = 20 * time.Second
	// publishTimeout bounds a subscription or a state message.
	publishTimeout = 10 * time.Second
	// shutdownTimeout bounds saying "offline" and disconnecting.
	shutdownTimeout = 5 * time.Second
	// stableAfter is how long a connection must last for the next
	// reconnect to wait only a moment. A shorter one is a flap, and each
	// flap in a row counts as a failed attempt: a device whose connection
	// is dropped as soon as it is made (a cloned device taking its
	// session, back and forth) must not hammer the broker.
	stableAfter = 30 * time.Second
)

// run connects and serves until ctx ends, then says offline and
// disconnects.
func (r *runner) run(ctx context.Context) error {
	r.ctx = ctx
	if r.url.Scheme == "mqtt" {
		r.status.printf("warning: %s is not encrypted: anyone on the way sees this device's login and its commands (which stay signed)", r.url)
	}
	if p, err := r.proxy(r.url.Host); err != nil {
		r.status.printf("warning: %v", err)
	} else if p != nil {
		r.status.printf("reaching %s through the proxy %s", r.url, p.Redacted())
	}
	// A clock far off would have the first login refused: measure first.
	r.syncClock(ctx)
	if r.clock != nil {
		r.wg.Go(func() { r.resyncClock(ctx) })
	}
	// The client outlives ctx by the moment it takes to say offline.
	clientCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	cm, err := autopaho.NewConnection(clientCtx, r.clientConfig(ctx))
	if err != nil {
		return fmt.Errorf("starting the MQTT client: %w", err)
	}
	r.wg.Go(func() { r.work(ctx, cm) })
	<-ctx.Done()
	r.shutdown(cm)
	return nil
}

// shutdown waits for the goroutines, publishes "offline" (a clean
// DISCONNECT does not fire the last will) and disconnects.
func (r *runner) shutdown(cm *autopaho.ConnectionManager) {
	r.mu.Lock()
	r.closing = true
	r.mu.Unlock()
	r.wg.Wait()

	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := r.publishState(ctx, cm, control.State{Kind: control.StateOffline}); err != nil {
		r.log.Debug("could not say offline; the broker will, from the last will", "err", err)
	}
	if err := cm.Disconnect(ctx); err != nil {
		r.log.Debug("disconnecting", "err", err)
	}
	if r.connected.Load() {
		r.status.printf("disconnected from %s", r.url)
	}
}

// clientConfig is the autopaho configuration; ctx is the run's.
func (r *runner) clientConfig(ctx context.Context) autopaho.ClientConfig {
	offline, _ := control.State{Kind: control.StateOffline}.Marshal()
	pahoLog := pahoLogger{r.log.With("component", "mqtt")}
	return autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{r.url},
		TlsCfg:                        r.tls,
		KeepAlive:                     keepAliveSeconds,
		CleanStartOnInitialConnection: false,
		SessionExpiryInterval:         sessionExpirySeconds,
		ReconnectBackoff:              r.reconnectDelay,
		ConnectTimeout:                connectTimeout,
		WillMessage:                   &paho.WillMessage{Topic: r.stateTopic, Payload: offline, QoS: 1, Retain: true},
		WillProperties:                &paho.WillProperties{},
		ConnectPacketBuilder:          r.connectPacket,
		AttemptConnection:             r.attempt,
		OnConnectionUp: func(cm *autopaho.ConnectionManager, _ *paho.Connack) {
			r.connectionUp(ctx, cm)
		},
		OnConnectionDown: r.connectionDown,
		OnConnectError:   r.connectFailed,
		Errors:           pahoLog,
		PahoErrors:       pahoLog,
		ClientConfig: paho.ClientConfig{
			ClientID: r.clientID,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
				return r.received(ctx, pr)
			}},
			OnClientError:      r.lost,
			OnServerDisconnect: func(d *paho.Disconnect) { r.lost(disconnectError(d)) },
		},
	}
}

// attempt makes the connection for one attempt: TCP to the broker,
// through the HTTP CONNECT proxy if one applies (the tunnel carries the TLS
// end to end, and the pin is checked against the broker's own
// certificate), then TLS for mqtts://.
func (r *runner) attempt(ctx context.Context, _ autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
	// autopaho passes the context of the client's whole life, not the
	// attempt's: bound it as its own dial does.
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	nc, err := r.dial(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	if r.tls == nil {
		return packets.NewThreadSafeConn(nc), nil
	}
	tc := tls.Client(nc, r.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		if r.wsAddr == "" || ctx.Err() != nil {
			return nil, err
		}
		// A network that passes HTTPS but not MQTT's ALPN protocol (it
		// inspects what TLS clients ask for) still passes a WebSocket.
		ws, _, werr := relayproto.DialWebSocket(ctx, r.wsAddr, relayproto.MQTTWebSocketPath, "mqtt", r.tls, r.dial)
		if werr != nil {
			return nil, err // the first failure says more
		}
		r.log.Info("reached the broker by a WebSocket: MQTT's own protocol did not get through", "err", err)
		return packets.NewThreadSafeConn(ws), nil
	}
	// autopaho writes from more than one goroutine; a tls.Conn alone
	// does not take that.
	return packets.NewThreadSafeConn(tc), nil
}

// connectPacket completes each CONNECT with credentials made for it: the
// device's password is valid only for minutes.
func (r *runner) connectPacket(cp *paho.Connect, _ *url.URL) (*paho.Connect, error) {
	cp.Username = r.clientID
	if r.broker.Username != "" {
		cp.Username = r.broker.Username
	}
	switch {
	case r.broker.Password != "":
		cp.Password = []byte(r.broker.Password)
	case r.broker.ClientCert != "":
		cp.Password = nil // the certificate is the credential
	default:
		cp.Password = []byte(control.DevicePassword(r.priv, r.fleet, r.device, r.serverNow()))
	}
	cp.UsernameFlag, cp.PasswordFlag = true, cp.Password != nil
	if cp.Properties == nil {
		cp.Properties = &paho.ConnectProperties{}
	}
	rm, mps := uint16(receiveMaximum), uint32(maxPacketSize)
	cp.Properties.ReceiveMaximum, cp.Properties.MaximumPacketSize = &rm, &mps
	return cp, nil
}

// connectionUp: subscribe and say online, off autopaho's goroutine.
func (r *runner) connectionUp(ctx context.Context, cm *autopaho.ConnectionManager) {
	r.connected.Store(true)
	r.status.printf("connected to %s as %s", r.url, r.clientID)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.upSince = r.now()
	if !r.closing {
		r.wg.Go(func() { r.announce(ctx, cm) })
	}
}

// announce subscribes to the cmd topic and then publishes "online": a
// server that sees online may send commands at once. Then it reports the
// sessions' ends that could not be reported before (see reporter).
func (r *runner) announce(ctx context.Context, cm *autopaho.ConnectionManager) {
	subCtx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	sa, err := cm.Subscribe(subCtx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: r.cmdTopic, QoS: 1}}})
	if err != nil {
		if ctx.Err() == nil {
			if sa != nil && len(sa.Reasons) > 0 {
				err = fmt.Errorf("reason code %#x", sa.Reasons[0])
			}
			r.status.printf("the broker did not let this device listen on %s (%v), so it cannot receive commands; check the broker's access rules", r.cmdTopic, err)
		}
		return
	}
	if err := r.publishState(ctx, cm, control.State{Kind: control.StateOnline}); err != nil {
		if ctx.Err() == nil {
			r.log.Warn("could not say online", "err", err)
		}
		return
	}
	r.sendUnreported(ctx, cm)
}

// received queues a message for the worker. It runs on paho's goroutine
// for received messages, which must not wait for a PUBACK, so it never
// publishes. It may wait for the worker, though: paho reads PUBACKs on
// another goroutine, and acknowledges a command only once this returns,
// so that in a burst (many sessions asked of the device at once) the
// broker holds back what exceeds the device's Receive Maximum rather than
// the agent dropping what its inbox cannot hold (issue 11).
func (r *runner) received(ctx context.Context, pr paho.PublishReceived) (bool, error) {
	if pr.Packet.Topic != r.cmdTopic {
		r.log.Debug("ignoring a message on another topic", "topic", pr.Packet.Topic)
		return true, nil
	}
	select {
	case r.inbox <- pr.Packet.Payload:
		return true, nil
	default:
	}
	t := time.NewTimer(inboxWait)
	defer t.Stop()
	select {
	case r.inbox <- pr.Packet.Payload:
	case <-t.C:
		r.log.Warn("dropping a command: too many are waiting", "waiting", len(r.inbox))
	case <-ctx.Done():
	}
	return true, nil
}

// publishState publishes s, retained, on the state topic.
func (r *runner) publishState(ctx context.Context, cm *autopaho.ConnectionManager, s control.State) error {
	payload, err := s.Marshal()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if _, err := cm.Publish(ctx, &paho.Publish{Topic: r.stateTopic, QoS: 1, Retain: true, Payload: payload}); err != nil {
		return fmt.Errorf("publishing %q on %s: %w", payload, r.stateTopic, err)
	}
	return nil
}

// connectionDown counts flaps; it runs before the reconnect's first wait.
// It always lets autopaho reconnect: only the end of ctx stops the agent.
func (r *runner) connectionDown() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.now().Sub(r.upSince) < stableAfter {
		r.flaps++
	} else {
		r.flaps = 0
	}
	return true
}

// lost reports a connection that dropped; autopaho reconnects.
func (r *runner) lost(err error) {
	r.status.printf("lost the broker (%v); reconnecting", err)
}

// connectFailed remembers why an attempt failed, for the retry line. A
// login the server's broker refused may be the device's clock: it is
// measured again before the next attempt.
func (r *runner) connectFailed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastFail = err
	if ce, ok := errors.AsType[*autopaho.ConnackError](err); ok && (ce.ReasonCode == 0x86 || ce.ReasonCode == 0x87) &&
		r.clock != nil && !r.broker.external() && !r.closing {
		r.wg.Go(func() { r.syncClock(r.ctx) })
	}
}

// reconnectDelay is autopaho's wait before attempt number attempt of one
// (re)connection; it tells the person why and for how long.
func (r *runner) reconnectDelay(attempt int) time.Duration {
	if attempt == 0 && !r.connected.Load() {
		return 0 // the first connection of a run
	}
	r.mu.Lock()
	flaps, lastFail := r.flaps, r.lastFail
	r.mu.Unlock()
	d := r.backoff.Delay(attempt+flaps, rand.Float64())
	switch {
	case attempt > 0:
		r.status.printf("cannot connect to %s: %s; retrying in %s", r.url, r.explainFailure(lastFail), roughly(d))
	case flaps > 0:
		r.status.printf("the connection to %s keeps dropping soon after it is made; reconnecting in %s", r.url, roughly(d))
	}
	return d
}

// explainFailure turns a failed connection attempt into words for the
// device's owner.
func (r *runner) explainFailure(err error) string {
	if err == nil {
		return "no reason given"
	}
	var untrusted *untrustedError
	if errors.As(err, &untrusted) {
		return untrusted.msg
	}
	var ce *autopaho.ConnackError
	if errors.As(err, &ce) {
		return r.explainRefusal(ce)
	}
	if pe, ok := errors.AsType[*proxydial.Error](err); ok {
		return pe.Message() + " (the proxy is the agent config's proxy, else HTTPS_PROXY's)"
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return fmt.Sprintf("its certificate is not trusted (%v); set broker.ca_file to the authority that signs it", verr.Err)
	}
	if inner := errors.Unwrap(err); inner != nil && strings.HasPrefix(err.Error(), "failed to connect to ") {
		err = inner // autopaho's prefix repeats the URL
	}
	return err.Error()
}

// explainRefusal says why a broker refused the login, and what to check.
func (r *runner) explainRefusal(ce *autopaho.ConnackError) string {
	what := fmt.Sprintf("the broker refused the login (reason code %#x", ce.ReasonCode)
	if ce.Reason != "" {
		what += ": " + ce.Reason
	}
	what += ")"
	switch ce.ReasonCode {
	case 0x86, 0x87: // bad user name or password, not authorized
		if r.broker.external() {
			return what + "; check broker.username, broker.password or the client certificate, and the broker's access rules"
		}
		return what + "; check that this device's clock is right, and that it is still enrolled (porthole devices)"
	case 0x88, 0x89, 0x97, 0x9f: // unavailable, busy, quota, rate
		return what + "; it is busy or unavailable"
	}
	return what
}

// disconnectError says why the broker sent DISCONNECT.
func disconnectError(d *paho.Disconnect) error {
	var why string
	switch d.ReasonCode {
	case 0x8b:
		why = "it is shutting down"
	case 0x8e:
		why = "another connection took over this device's session; is a second agent running with this identity?"
	case 0x98:
		why = "the server disconnected this device; was it deleted?"
	default:
		why = fmt.Sprintf("it disconnected this device, reason code %#x", d.ReasonCode)
	}
	if d.Properties != nil && d.Properties.ReasonString != "" {
		why += ": " + d.Properties.ReasonString
	}
	return errors.New(why)
}

// roughly formats a wait for a person: whole seconds, or milliseconds
// under one second.
func roughly(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%d s", int(d.Round(time.Second)/time.Second))
}

// pahoLogger sends paho's error lines to the agent's debug log: the agent
// reports what matters itself.
type pahoLogger struct{ l *slog.Logger }

func (p pahoLogger) Println(v ...any) { p.l.Debug(strings.TrimSpace(fmt.Sprintln(v...))) }

func (p pahoLogger) Printf(format string, v ...any) {
	p.l.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)))
}
