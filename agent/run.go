package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/agent/agentretry"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/apiclient"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/proxydial"
)

// Files the agent keeps in the state directory while it runs.
const (
	// NonceFile remembers the nonces of accepted commands for as long as
	// the commands could be replayed, across restarts.
	NonceFile = "nonces"
	// RunLockFile is locked by the running agent: one agent per identity.
	RunLockFile = "run.lock"
)

// RunOptions are the inputs of Run.
type RunOptions struct {
	// State is the enrolled device (agentstate.Load). Required.
	State *agentstate.State
	// Config is the owner's configuration. The zero value is the defaults.
	Config Config
	// Log is the agent's event log (agentlog.Open), where commands
	// accepted and rejected are recorded; the caller closes it after Run
	// returns. Required.
	Log *agentlog.Log
	// Logger gets the agent's log: commands accepted and rejected, and
	// debug detail. Nil: nothing is logged.
	Logger *slog.Logger
	// Status gets a line for a person whenever the connection to the
	// broker comes or goes. Nil: nothing is written.
	Status io.Writer
	// Sessions carries out accepted commands (Tunnels, through the
	// recorder's Handler). Required.
	Sessions SessionHandler
	// Backoff paces reconnects. The zero value is the defaults.
	Backoff agentretry.Backoff
	// Now is the device's clock: for the event log and how long
	// connections last, and, without a Clock, for command expiry and the
	// MQTT password. Nil: time.Now.
	Now func() time.Time
	// Clock, if set, is the server's time as the device knows it, for
	// command expiry and the MQTT password: Run measures it before it
	// connects, and again when a command is refused for its time or the
	// broker refuses the login. Nil: Now is taken to be right.
	Clock *ServerClock
}

// runner is one Run: the device's identity, its broker, and what it
// remembers about commands.
type runner struct {
	ctx      context.Context // run's: ends when the agent stops
	log      *slog.Logger
	status   *statusWriter
	sessions SessionHandler
	backoff  agentretry.Backoff
	now      func() time.Time
	clock    *ServerClock // nil: none

	fleet, device string
	clientID      string // "<fleet>/<device>"
	cmdTopic      string
	stateTopic    string
	priv          ed25519.PrivateKey
	broker        BrokerConfig
	url           *url.URL
	tls           *tls.Config // nil for mqtt://
	wsAddr        string      // the server's port, for MQTT by a WebSocket; "" with an external broker
	proxy         proxydial.ProxyFunc
	dial          proxydial.DialFunc // reaches the broker, through proxy if one applies

	verifier *control.Verifier
	nonces   *control.FileNonceStore
	events   *agentlog.Log
	unlock   func() error

	inbox     chan []byte // commands received, waiting for the worker
	connected atomic.Bool // a connection has come up during this run
	wg        sync.WaitGroup

	mu       sync.Mutex
	closing  bool      // guarded by mu; no more goroutines may start
	lastFail error     // guarded by mu; why the last connection attempt failed
	upSince  time.Time // guarded by mu; when the last connection came up
	flaps    int       // guarded by mu; connections in a row that did not last
	// unreported holds, by session, the ends (tunnel_down) that could
	// not be published; announce sends them on the next connection.
	// Guarded by mu.
	unreported map[string]control.State
}

// Run connects the device to its MQTT broker and obeys the commands it
// verifies, until ctx ends; then it reports the device offline, disconnects
// and returns nil. It returns an error only if it cannot start: a bad
// configuration, another agent on the same state directory, or state files
// it cannot open. Losing the broker is not an error: Run reconnects with
// Backoff, for as long as ctx lasts.
//
// The MQTT side of the control channel (see package control for the
// protocol):
//
//   - The client id is "<fleet>/<device>", and so is the user name unless
//     the config names another. The password is minted for each connection
//     with the device key (control.DevicePassword), since it is valid only
//     for minutes; an external broker may take a configured password or a
//     client certificate instead. The API does not accept it: the agent's
//     API calls are signed for each request (control.SignDeviceRequest).
//   - The last will is "offline", retained, on the device's state topic.
//     On each connection the agent subscribes to its cmd topic at QoS 1 and
//     then publishes "online", retained: online means listening.
//   - Keep-alive is 60 s: an idle device costs the broker one ping a
//     minute, and a dead connection is noticed within 90 s.
//   - The session is kept (clean start off, session expiry
//     control.MaxValidity), so a command the broker queued during a short
//     outage still arrives; an older one could not pass its expiry check
//     anyway. The server's own broker keeps no sessions, and says so; the
//     agent then relies on subscribing again, which it always does.
//
// Every message on the cmd topic goes through control.Verifier, with the
// nonces kept in NonceFile. A rejected command is logged, recorded in
// agentlog.File and answered with "rejected <reason>"; an accepted one is
// recorded and handed to Sessions.
func Run(ctx context.Context, opts RunOptions) error {
	r, err := newRunner(opts)
	if err != nil {
		return err
	}
	defer r.close()
	return r.run(ctx)
}

// newRunner checks the options and opens the state files; nothing touches
// the network yet.
func newRunner(opts RunOptions) (_ *runner, err error) {
	st := opts.State
	if st == nil || len(st.PrivateKey) != ed25519.PrivateKeySize {
		return nil, errors.New("agent: Run needs a loaded State")
	}
	if opts.Log == nil || opts.Sessions == nil {
		return nil, errors.New("agent: Run needs the event log and a SessionHandler")
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	enr := &st.Enrollment
	r := &runner{
		log:      opts.Logger,
		status:   &statusWriter{w: opts.Status},
		sessions: opts.Sessions,
		now:      opts.Now,
		clock:    opts.Clock,
		fleet:    enr.Fleet,
		device:   enr.Name,
		priv:     st.PrivateKey,
		broker:   opts.Config.Broker,
		proxy:    opts.Config.proxy(),
		events:   opts.Log,
		inbox:    make(chan []byte, inboxSize),

		unreported: map[string]control.State{},
	}
	r.dial = opts.Config.NetDial()
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.backoff, err = opts.Backoff.WithDefaults(); err != nil {
		return nil, err
	}
	if err := r.identify(enr); err != nil {
		return nil, err
	}
	if err := r.openState(st.Dir, enr); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// identify works out the device's MQTT identity, topics, broker and TLS
// configuration from the enrollment and the config.
func (r *runner) identify(enr *agentstate.Enrollment) error {
	var err error
	if r.clientID, err = control.DeviceUsername(r.fleet, r.device); err != nil {
		return fmt.Errorf("the enrollment record names no valid device: %w", err)
	}
	r.cmdTopic, _ = control.CmdTopic(r.fleet, r.device)
	r.stateTopic, _ = control.StateTopic(r.fleet, r.device)

	raw := enr.BrokerURL
	if r.broker.external() {
		raw = r.broker.URL
	}
	if raw == "" {
		return errors.New("the enrollment names no MQTT broker; set broker.url in the agent's config")
	}
	if r.url, err = brokerURL(raw); err != nil {
		return fmt.Errorf("the broker URL: %w", err)
	}
	if r.url.Scheme == "mqtts" {
		if r.tls, err = brokerTLS(r.url, enr, r.broker); err != nil {
			return err
		}
		// The server's own broker also takes MQTT by a WebSocket on the
		// server's port, for a network that passes HTTPS but not MQTT's
		// ALPN protocol: attempt tries it when TLS fails.
		if !r.broker.external() {
			if u, err := url.Parse(enr.Server); err == nil && u.Host != "" {
				r.wsAddr = apiclient.ServerAddr(u)
			}
		}
	}
	return nil
}

// openState takes the run lock and opens the nonce memory. close undoes
// whatever it did.
func (r *runner) openState(dir string, enr *agentstate.Enrollment) error {
	controlKey, err := control.ParseControlKey(enr.ControlKey)
	if err != nil {
		return fmt.Errorf("the enrollment record's control key cannot be used (%w); enroll the device again", err)
	}
	if r.unlock, err = agentstate.Lock(filepath.Join(dir, RunLockFile), fmt.Sprintf(
		"another porthole-agent is already running as %s with the state directory %s; stop it first (two agents cannot share one device identity)", r.clientID, dir)); err != nil {
		return err
	}
	// Opened before the server's time is measured: the device's own clock
	// may be ahead, and must not forget nonces still live by the server's
	// (a command accepted before a restart would be accepted again). So
	// none is forgotten here; Remember forgets them by the server's time.
	if r.nonces, err = control.OpenFileNonceStore(filepath.Join(dir, NonceFile), time.Time{}); err != nil {
		return fmt.Errorf("opening the command nonce memory: %w", err)
	}
	r.verifier, err = control.NewVerifier(controlKey, r.fleet, r.device, r.nonces)
	return err
}

// serverNow is the time commands and the MQTT password are checked by:
// the server's, as the device knows it.
func (r *runner) serverNow() time.Time {
	if r.clock != nil {
		return r.clock.Now()
	}
	return r.now()
}

// syncClock measures the server's time again (ServerClock limits how often)
// and reports whether the device's idea of it changed.
func (r *runner) syncClock(ctx context.Context) bool {
	if r.clock == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, clockSyncTimeout)
	defer cancel()
	changed, err := r.clock.Sync(ctx)
	if err != nil {
		r.log.Debug("could not read the server's time", "err", err)
	}
	return changed
}

// resyncClock measures the server's time every clockResyncEvery until ctx
// ends: the monotonic clock the measurement runs on does not count time a
// device spends suspended.
func (r *runner) resyncClock(ctx context.Context) {
	t := time.NewTicker(clockResyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.syncClock(ctx)
		}
	}
}

// clockSyncTimeout bounds one measurement of the server's time.
const clockSyncTimeout = 5 * time.Second

// close releases what openState opened.
func (r *runner) close() {
	if r.nonces != nil {
		if err := r.nonces.Close(); err != nil {
			r.log.Error("closing the nonce memory", "err", err)
		}
	}
	if r.unlock != nil {
		_ = r.unlock()
	}
}

// statusWriter writes whole lines for a person, one at a time.
type statusWriter struct {
	mu sync.Mutex
	w  io.Writer // nil: lines are dropped
}

func (s *statusWriter) printf(format string, args ...any) {
	if s.w == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, format+"\n", args...)
}
