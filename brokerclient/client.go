package brokerclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"
)

const (
	// keepAlive is how often (in seconds) the client pings an otherwise
	// silent connection, so a dead one is noticed within about 1.5 times it.
	keepAlive = 30
	// attemptTimeout bounds one connection attempt: TCP, TLS and CONNACK.
	attemptTimeout = 10 * time.Second
	// defaultConnectWait bounds Connect when its context has no deadline.
	defaultConnectWait = 30 * time.Second
)

// Client is portholed's connection to an external MQTT 5 broker. Create it
// with New, register handlers with Subscribe, connect with Connect, send
// with Publish and stop with Close. Its methods are safe for concurrent use.
type Client struct {
	s     *settings
	log   *slog.Logger
	subs  subscriptions
	retry *backoff
	ctx   context.Context // ends at Close: stops reconnecting and bounds every wait
	stop  context.CancelFunc

	firstUp   chan struct{} // closed when the first connection is up
	upOnce    sync.Once
	refused   chan error  // a permanent refusal before the first connection; buffered 1
	connected atomic.Bool // a connection is up now

	// renewals are the subscription renewals after each (re)connection.
	// Only connectionUp adds to it, on autopaho's goroutine, which has
	// ended before Close waits.
	renewals sync.WaitGroup

	mu      sync.Mutex
	cm      *autopaho.ConnectionManager // guarded by mu; set by Connect
	closed  bool                        // guarded by mu
	lastErr error                       // guarded by mu; the last failed attempt, described
}

// New checks cfg (loading its TLS files) and returns a Client that is not
// connected yet.
func New(cfg Config) (*Client, error) {
	s, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &Client{
		s:       s,
		log:     s.Logger.With("component", "brokerclient", "broker", s.url.String(), "client_id", s.ClientID),
		retry:   newBackoff(),
		ctx:     ctx,
		stop:    stop,
		firstUp: make(chan struct{}),
		refused: make(chan error, 1),
	}
	if s.url.Scheme == "mqtt" && s.Password != "" && !isLoopback(s.url.Hostname()) {
		c.log.Warn("the MQTT password travels unencrypted over the network: use an mqtts:// broker URL")
	}
	return c, nil
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// Connect starts connecting and waits for the first connection: it returns
// nil once connected, at once if the broker refuses the login or its TLS
// certificate is not trusted, or, if the broker cannot be reached, when ctx
// ends (after 30 s if ctx has no deadline) with the last attempt's error.
// The error is a sentence naming the broker and what failed. After a failed
// Connect the Client is closed. Once connected, the Client reconnects by
// itself after any loss, with exponential backoff and jitter up to 60 s, and
// subscribes again each time.
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.cm != nil:
		c.mu.Unlock()
		return errors.New("brokerclient: Connect was already called")
	}
	cm, err := autopaho.NewConnection(c.ctx, c.pahoConfig())
	if err != nil {
		c.mu.Unlock()
		_ = c.Close()
		return fmt.Errorf("brokerclient: starting the MQTT client: %w", err)
	}
	c.cm = cm
	c.mu.Unlock()

	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultConnectWait)
		defer cancel()
	}
	select {
	case <-c.firstUp:
		return nil
	case err = <-c.refused:
	case <-c.ctx.Done():
		return ErrClosed
	case <-ctx.Done():
		c.mu.Lock()
		err = c.lastErr
		c.mu.Unlock()
		if err == nil {
			err = fmt.Errorf("brokerclient: no connection to the MQTT broker at %s yet: %w", c.s.url, ctx.Err())
		}
	}
	_ = c.Close()
	return err
}

func (c *Client) pahoConfig() autopaho.ClientConfig {
	debug := pahoLogger{c.log.With("library", "paho")}
	return autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{c.s.url},
		TlsCfg:                        c.s.tls,
		KeepAlive:                     keepAlive,
		CleanStartOnInitialConnection: true,
		SessionExpiryInterval:         0, // the broker forgets the session at once; subscribe anew each time
		ReconnectBackoff:              c.retry.delay,
		ConnectTimeout:                attemptTimeout,
		ConnectUsername:               c.s.Username,
		ConnectPassword:               []byte(c.s.Password),
		OnConnectionUp:                c.connectionUp,
		OnConnectionDown:              c.connectionDown,
		OnConnectError:                c.connectFailed,
		Debug:                         debug,
		Errors:                        debug,
		PahoDebug:                     debug,
		PahoErrors:                    debug,
		ClientConfig: paho.ClientConfig{
			ClientID:           c.s.ClientID,
			OnPublishReceived:  []func(paho.PublishReceived) (bool, error){c.received},
			PacketTimeout:      c.s.PublishTimeout,
			OnClientError:      c.connectionLost,
			OnServerDisconnect: c.disconnectedByBroker,
		},
	}
}

// connectionUp runs on the connection manager's goroutine, which must not
// block: the subscriptions are renewed on a goroutine of their own.
func (c *Client) connectionUp(cm *autopaho.ConnectionManager, _ *paho.Connack) {
	c.connected.Store(true)
	c.retry.up(time.Now())
	c.log.Info("connected to the MQTT broker")
	c.upOnce.Do(func() { close(c.firstUp) })
	c.renewals.Add(1)
	go func() {
		defer c.renewals.Done()
		c.renew(cm)
	}()
}

func (c *Client) connectionDown() bool {
	c.connected.Store(false)
	c.retry.down(time.Now())
	return true // keep reconnecting until Close
}

func (c *Client) connectFailed(err error) {
	described, permanent := c.s.connectError(err)
	c.mu.Lock()
	c.lastErr = described
	c.mu.Unlock()
	select {
	case <-c.firstUp:
		c.log.Warn("cannot reconnect to the MQTT broker; retrying", "err", described)
	default:
		if permanent {
			select {
			case c.refused <- described:
			default:
			}
		}
		c.log.Debug("connection attempt failed", "err", described)
	}
}

func (c *Client) connectionLost(err error) {
	c.log.Warn("lost the connection to the MQTT broker; reconnecting", "err", err)
}

func (c *Client) disconnectedByBroker(d *paho.Disconnect) {
	reason := reasonName(d.ReasonCode)
	if d.Properties != nil && d.Properties.ReasonString != "" {
		reason += ": " + d.Properties.ReasonString
	}
	c.log.Warn("the MQTT broker closed the connection; reconnecting", "reason", reason)
}

// Connected reports whether the client has a connection to the broker now.
func (c *Client) Connected() bool { return c.connected.Load() }

// Publish sends payload to topic at QoS 0 or 1 and, for QoS 1, waits for
// the broker's acknowledgement (up to Config.PublishTimeout). While the
// client has no connection it fails at once with an error wrapping
// ErrNotConnected; the message is not queued, so a command is never
// delivered later than its sender expects. A message the broker refuses
// (its ACL) fails with ErrRefused.
func (c *Client) Publish(topic string, payload []byte, retain bool, qos byte) error {
	if err := checkTopic(topic); err != nil {
		return err
	}
	if qos > 1 {
		return fmt.Errorf("brokerclient: cannot publish at QoS %d: use 0 or 1", qos)
	}
	op := "publish to " + topic
	cm, err := c.conn()
	if err != nil {
		return c.requestError(op, err)
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.s.PublishTimeout)
	defer cancel()
	resp, err := cm.Publish(ctx, &paho.Publish{Topic: topic, Payload: payload, QoS: qos, Retain: retain})
	switch {
	case resp != nil && resp.ReasonCode >= 0x80:
		return &describedError{fmt.Sprintf("brokerclient: the MQTT broker refused the message to %s: %s", topic, reasonName(resp.ReasonCode)), []error{ErrRefused}}
	case err == nil:
		return nil
	}
	return c.requestError(op, err)
}

// Subscribe calls handler with the topic and payload of every message on a
// topic matching filter (MQTT wildcards allowed), for the Client's
// lifetime. The client subscribes to "$share/<ShareGroup>/<filter>", so
// among the server nodes sharing the group each message reaches one;
// handler receives the message's real topic. The subscription is renewed
// on every reconnection. If the client is connected, Subscribe waits for
// the broker's answer and returns its refusal (wrapping ErrRefused), and
// then nothing is registered; otherwise the subscription is made when the
// connection comes up.
//
// handler runs on the client's receiving goroutine, one message at a time,
// and holds up the messages behind it, so it should be quick; payload is
// its own copy. A message matching several filters reaches each of their
// handlers, and may arrive once per matching subscription; brokers differ
// on whether a (re)subscription replays retained messages to a shared
// subscription (Mosquitto 2.0 does, the MQTT 5 standard says not to), so
// handlers should treat every message as a state to apply, not an event
// to count.
func (c *Client) Subscribe(filter string, handler func(topic string, payload []byte)) error {
	if err := checkFilter(filter); err != nil {
		return err
	}
	if handler == nil {
		return errors.New("brokerclient: Subscribe needs a handler")
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	cm := c.cm
	// Registered before asking, so a connection coming up meanwhile renews
	// it: autopaho makes the connection usable before it calls
	// connectionUp, whose renewal reads the registrations.
	sub := c.subs.add(filter, handler)
	c.mu.Unlock()
	if cm == nil {
		return nil
	}
	err := c.subscribe(cm, []string{filter})
	if err == nil || errors.Is(err, ErrNotConnected) {
		return nil
	}
	c.subs.remove(sub)
	return err
}

// renew subscribes again to every registered filter on a new connection.
func (c *Client) renew(cm *autopaho.ConnectionManager) {
	filters := c.subs.filters()
	if len(filters) == 0 {
		return
	}
	if err := c.subscribe(cm, filters); err != nil && c.ctx.Err() == nil {
		c.log.Error("could not renew the subscriptions: state messages will not arrive until the next reconnection", "err", err)
	}
}

// subscribe sends one SUBSCRIBE for the shared form of filters and waits for
// the answer; a refusal names the first refused filter.
func (c *Client) subscribe(cm *autopaho.ConnectionManager, filters []string) error {
	opts := make([]paho.SubscribeOptions, len(filters))
	for i, f := range filters {
		opts[i] = paho.SubscribeOptions{Topic: c.shared(f), QoS: 1}
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.s.PublishTimeout)
	defer cancel()
	suback, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: opts})
	if suback != nil {
		for i, code := range suback.Reasons {
			if code >= 0x80 && i < len(opts) {
				return &describedError{fmt.Sprintf("brokerclient: the MQTT broker refused the subscription to %s: %s", opts[i].Topic, reasonName(code)), []error{ErrRefused}}
			}
		}
	}
	if err != nil {
		return c.requestError("subscribe to "+opts[0].Topic, err)
	}
	return nil
}

func (c *Client) shared(filter string) string { return "$share/" + c.s.ShareGroup + "/" + filter }

// received hands an incoming message to the handlers whose filter matches.
func (c *Client) received(pr paho.PublishReceived) (bool, error) {
	c.subs.dispatch(pr.Packet.Topic, pr.Packet.Payload)
	return true, nil
}

// conn is the connection manager, or why there is none to use.
func (c *Client) conn() (*autopaho.ConnectionManager, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return nil, ErrClosed
	case c.cm == nil:
		return nil, ErrNotConnected
	}
	return c.cm, nil
}

// requestError says why op ("publish to <topic>") failed, keeping err and
// the sentinel a caller branches on in the chain.
func (c *Client) requestError(op string, err error) error {
	var msg string
	var sentinel error
	switch {
	case errors.Is(err, autopaho.ConnectionDownError) || errors.Is(err, ErrNotConnected):
		msg, sentinel = "not connected to the MQTT broker at "+c.s.url.String(), ErrNotConnected
	case errors.Is(err, ErrClosed) || c.ctx.Err() != nil:
		msg, sentinel = "the client is closed", ErrClosed
	case errors.Is(err, context.DeadlineExceeded):
		msg = fmt.Sprintf("no answer from the MQTT broker within %s", c.s.PublishTimeout)
	default:
		msg = err.Error()
	}
	errs := []error{err}
	if sentinel != nil {
		errs = append(errs, sentinel)
	}
	return &describedError{"brokerclient: cannot " + op + ": " + msg, errs}
}

// Close disconnects from the broker, stops reconnecting and returns once
// every goroutine of the client has ended. A Publish or Subscribe waiting
// for the broker returns ErrClosed. A second Close returns ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.closed = true
	cm := c.cm
	c.mu.Unlock()

	c.stop()
	if cm != nil {
		<-cm.Done() // autopaho sends DISCONNECT and stops its goroutines
	}
	c.renewals.Wait()
	c.connected.Store(false)
	return nil
}
