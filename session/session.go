// Package session runs engineers' sessions on the server: it records a
// session, certifies the engineer's key for it, tells the device to open
// it with a signed command, follows what the device reports (tunnel_up,
// tunnel_down), and closes it on the engineer's word, on the device's, or
// when a limit passes: the device did not connect in time
// (device_unreachable), the engineer was idle (idle_timeout), or the
// session reached its maximum duration (max_duration). The reasons are
// control's CloseReason words; a device's reason is recorded as it gives
// it, known here or not.
//
// Consent is the device's business (its owner's config decides the mode;
// nothing here can change it). The server only follows what the device
// says: "waiting_consent <session>" moves a session to waiting_consent
// while the owner of a device in approve mode decides, which gives it
// ConsentTimeout instead of ConnectTimeout; the device then reports
// tunnel_up, or tunnel_down with its reason (denied, consent_timeout,
// no_consent, ...), which closes the session.
//
// A fleet's policy (package fleetpolicy) narrows each request: a session
// asking for ports the fleet does not allow is refused, the fleet's caps
// shorten the limits, and the open command carries what the device
// applies itself (the ports, the consent floor). In a fleet with the
// four-eyes rule a session waits, requested, its device not asked and a
// four-eyes request in the support queue, until a second engineer of the
// fleet approves it (Approve; never the engineer who asked) or refuses it
// (Deny), or FourEyesTimeout passes; its open command then names both
// engineers.
//
// Every state lives in the store and every change is a conditional
// transition there, so several server nodes can share the sessions: each
// one's sweeper enforces the limits, and whichever closes a session first
// records the one reason.
//
// Only nodes with the api role hold the control key and the user CA (a
// Manager without them opens nothing). A close that its device must hear
// of is recorded with the close command due (store.Store.CloseSession), in
// the transaction that closes it, whichever node closes it: a node that
// can sign sends the command, claiming it first so that of several nodes
// one does, then clears it (SendDue). A close recorded by a relay node
// (relay_lost, its device gone) is sent by an API node as it hears the
// change (the daemon calls SendDue), or at its next sweep if it heard
// nothing or no API node was up then; a device told twice answers the
// second time that it holds no such session, which changes nothing.
//
// Each step is recorded in the audit log in the transaction that makes it:
// session_requested by the engineer, session_active by the device, and
// session_closed with its reason by whoever closed it, the actor the
// context carries (audit.WithActor: the API sets the engineer; the device
// for its own reports; the system, the default, for limits).
package session

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/fleetpolicy"
	"github.com/porthole/porthole/sessioncert"
	"github.com/porthole/porthole/store"
)

// Defaults of Config.
const (
	DefaultConnectTimeout = 30 * time.Second
	DefaultIdleTimeout    = 15 * time.Minute
	DefaultMaxDuration    = 2 * time.Hour
	DefaultSweepInterval  = 5 * time.Second
	// DefaultConsentTimeout is a minute more than the longest a device
	// lets its owner take to approve (agentconsent.MaxApprovalTimeout), so that
	// the device, which knows its own limit, is the one to say.
	DefaultConsentTimeout = 11 * time.Minute
	// DefaultCloseGrace is how long an engineer's close waits for the
	// device's word (see EngineerClose): a device ending a session on its
	// own reports it within a second or so.
	DefaultCloseGrace = 5 * time.Second
	// DefaultFourEyesTimeout is how long a session of a four-eyes fleet
	// waits for a second engineer to approve it.
	DefaultFourEyesTimeout = 10 * time.Minute
)

// ErrClosed is returned by a Manager that was closed.
var ErrClosed = errors.New("session: manager closed")

// ErrNoRelay is Open's error when the session could not be placed on a
// relay (none is live); nothing was recorded.
var ErrNoRelay = errors.New("session: no relay to place the session on")

// ErrControlUnavailable is Open's error when the open command could not be
// sent to the device (the control channel is down): the session is
// closed, and asking again later may work.
var ErrControlUnavailable = errors.New("session: the control channel is unavailable")

// ErrCannotSign is the error of what only a node holding the signing keys
// (the api role) does: opening a session, approving one.
var ErrCannotSign = errors.New("session: this node holds no signing keys (only nodes with the api role do)")

// ErrNotWaiting is the error of Approve and Deny for a session that does
// not wait for a second engineer: it never did, it was approved already,
// or it closed.
var ErrNotWaiting = errors.New("session: the session does not wait for approval")

// Config configures a Manager. Store, Publish and RelayAddr are required;
// other zero values mean the default on the field.
type Config struct {
	Store store.Store
	// Publish sends a signed command to a device's cmd topic.
	Publish func(topic string, payload []byte) error
	// ControlKey signs the commands, and UserCA the engineers' session
	// certificates. Both or neither: nil on a node without the api role,
	// whose Manager opens and approves nothing (ErrCannotSign) and leaves
	// the close commands of the sessions it closes to a node that can
	// sign them (SendDue).
	ControlKey ed25519.PrivateKey
	UserCA     ssh.Signer
	// RelayAddr (host:port) is the SSH relay the device is told to dial
	// when Place is nil or places the session on a relay without one.
	RelayAddr string
	// Place chooses the relay of a new session (package relays); the
	// device and the engineer are told its addresses. Nil: every session
	// is on this node's relay, RelayAddr.
	Place func(ctx context.Context, d *store.Device) (*store.Relay, error)
	// DefaultRelay2 is where a device dials the relay when its open
	// command names none: the server it enrolled with. A session placed
	// there goes without relay2 in its command, so that agents older than
	// the field (they refuse a command with a field they do not know, as
	// they must for a restriction they would otherwise ignore) keep
	// working with one node.
	DefaultRelay2 string
	// RelaysHeard returns the IDs of the relays heard from lately: an open
	// session placed on a relay not among them is closed as relay_lost
	// by the sweeper (a dead relay node cannot close its sessions, and
	// its devices may not say anything). Nil: not checked.
	RelaysHeard func(ctx context.Context) (map[string]bool, error)
	// ConnectTimeout is how long a device has to report tunnel_up. Zero:
	// 30 s.
	ConnectTimeout time.Duration
	// ConsentTimeout is how long a session may wait for its device's owner
	// (waiting_consent), from its creation. Zero: 11 min.
	ConsentTimeout time.Duration
	// IdleTimeout and MaxDuration are the server's limits, and the most a
	// request may ask for. Zero: 15 min and 2 h.
	IdleTimeout, MaxDuration time.Duration
	// SweepInterval is how often limits are checked and activity written.
	// Zero: 5 s.
	SweepInterval time.Duration
	// CloseGrace is how long an engineer's close of a session its online
	// device holds waits for the device's word (EngineerClose). Zero: 5 s.
	CloseGrace time.Duration
	// FourEyesTimeout is how long a session of a four-eyes fleet waits
	// for a second engineer, from its creation. Zero: 10 min.
	FourEyesTimeout time.Duration
	// Closed is told, without waiting, of each session this node closes or
	// hears closed by its device, so the relay can cut it. Nil: nobody.
	Closed func(id string)
	Logger *slog.Logger
	Now    func() time.Time
}

// Manager opens, follows and closes sessions. Create it with New; Close it.
type Manager struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	closed   bool
	waiters  map[string][]chan struct{} // session id → woken on any change
	activity map[string]bool            // sessions with engineer activity since the last sweep
	closing  map[string]*closing        // sessions an engineer closes, waiting for the device's word
}

// closing is an engineer's close of a session, waiting for its device.
type closing struct {
	actor audit.Actor // who closes it
	n     int         // closes of the session under way
}

// New checks cfg and starts the sweeper that enforces the limits.
func New(cfg Config) (*Manager, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("session: Config.Store is required")
	case cfg.Publish == nil:
		return nil, errors.New("session: Config.Publish is required")
	case cfg.ControlKey != nil && len(cfg.ControlKey) != ed25519.PrivateKeySize:
		return nil, errors.New("session: Config.ControlKey is not an ed25519 private key")
	case (cfg.ControlKey == nil) != (cfg.UserCA == nil):
		return nil, errors.New("session: Config.ControlKey and Config.UserCA go together: both, or neither on a node without the api role")
	case cfg.RelayAddr == "":
		return nil, errors.New("session: Config.RelayAddr is required")
	}
	cfg.ConnectTimeout = orDefault(cfg.ConnectTimeout, DefaultConnectTimeout)
	cfg.ConsentTimeout = orDefault(cfg.ConsentTimeout, DefaultConsentTimeout)
	cfg.IdleTimeout = orDefault(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.MaxDuration = orDefault(cfg.MaxDuration, DefaultMaxDuration)
	cfg.SweepInterval = orDefault(cfg.SweepInterval, DefaultSweepInterval)
	cfg.CloseGrace = orDefault(cfg.CloseGrace, DefaultCloseGrace)
	cfg.FourEyesTimeout = orDefault(cfg.FourEyesTimeout, DefaultFourEyesTimeout)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{cfg: cfg, log: cfg.Logger, now: cfg.Now, cancel: cancel, done: make(chan struct{}),
		waiters: map[string][]chan struct{}{}, activity: map[string]bool{}, closing: map[string]*closing{}}
	go m.sweepLoop(ctx)
	return m, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Close stops the sweeper and wakes every waiter. Sessions stay as they
// are in the store: another node, or this one restarted, carries on.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	m.closed = true
	for id := range m.waiters {
		m.wakeLocked(id)
	}
	m.mu.Unlock()
	m.cancel()
	<-m.done
	return nil
}

// Limits are the server's own idle timeout and maximum duration, which a
// fleet's policy may only shorten.
func (m *Manager) Limits() (idle, maxDuration time.Duration) {
	return m.cfg.IdleTimeout, m.cfg.MaxDuration
}

// Request is an engineer's request for a session.
type Request struct {
	Device    *store.Device
	User      *store.User
	PublicKey ssh.PublicKey // the engineer's key, to certify
	Ports     []int         // device ports the engineer wants to reach
	Reason    string
	// IdleTimeout and MaxDuration shorten the server's limits; zero or
	// longer ones mean the server's.
	IdleTimeout, MaxDuration time.Duration
	// Policy is the device's fleet's policy; nil: none.
	Policy *store.FleetPolicy
}

// Opened is a session that was asked of its device, with the engineer's
// certificate for it; or, in a four-eyes fleet, one that waits for a
// second engineer, with its request in the support queue.
type Opened struct {
	Session     *store.Session
	Certificate *ssh.Certificate
	// FourEyes is the request a second engineer approves (Approve); nil
	// outside four-eyes fleets.
	FourEyes *store.SupportRequest
}

// Open records a session, certifies the engineer's key for it, and sends
// the device a signed open command. The session is then connecting; Wait
// follows it. If the command cannot be sent the session is closed as
// control_unavailable and the error says so. A request the fleet's
// policy refuses records nothing: the error is a *fleetpolicy.Refusal. In
// a four-eyes fleet nothing is sent: the session waits, requested, for a
// second engineer (Opened.FourEyes).
func (m *Manager) Open(ctx context.Context, req Request) (*Opened, error) {
	if m.isClosed() {
		return nil, ErrClosed
	}
	if !m.canSign() {
		return nil, ErrCannotSign
	}
	if req.Device == nil || req.User == nil || req.PublicKey == nil {
		return nil, errors.New("session: a request needs a device, a user and a public key")
	}
	pol := req.Policy
	if err := fleetpolicy.Check(pol, req.Device.FleetName, req.Ports); err != nil {
		return nil, err
	}
	if pol == nil {
		pol = &store.FleetPolicy{}
	}
	idleMax, maxMax := fleetpolicy.Limit(m.cfg.IdleTimeout, pol.IdleTimeout), fleetpolicy.Limit(m.cfg.MaxDuration, pol.MaxDuration)
	idle, maxDur := limit(req.IdleTimeout, idleMax), limit(req.MaxDuration, maxMax)
	cmdPolicy := fleetpolicy.Command(pol, req.User.Email, "")
	// What the device will be sent (a four-eyes session's command names
	// its approver too) must be one its agent can take, by what it said.
	sent := cmdPolicy
	if pol.FourEyes {
		sent = fleetpolicy.Command(pol, req.User.Email, "a second engineer")
	}
	if err := fleetpolicy.CheckAgent(req.Device, sent); err != nil {
		return nil, err
	}
	now := m.now()
	ses := &store.Session{
		DeviceID: req.Device.ID, UserID: req.User.ID, UserEmail: req.User.Email,
		State: store.SessionRequested, PublicKey: string(ssh.MarshalAuthorizedKey(req.PublicKey)),
		Reason: req.Reason, Ports: req.Ports, IdleTimeout: idle, MaxDuration: maxDur, CreatedAt: now,
		FourEyes: pol.FourEyes,
	}
	if !ses.FourEyes {
		ses.Policy = fleetpolicy.Encode(cmdPolicy)
	}
	ses.PublicKey = ses.PublicKey[:len(ses.PublicKey)-1] // without the newline
	if m.cfg.Place != nil {
		r, err := m.cfg.Place(ctx, req.Device)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNoRelay, err)
		}
		ses.RelayID, ses.RelayAddr, ses.RelaySSHAddr = r.ID, r.Addr, r.SSHAddr
	}
	detail := map[string]string{"reason": req.Reason, "ports": joinPorts(req.Ports), "key": ssh.FingerprintSHA256(req.PublicKey),
		"limits": limitsWords(idle, idleMax, pol.IdleTimeout, maxDur, maxMax, pol.MaxDuration)}
	if pol.Version > 0 {
		// The rules that decided, so the log says why the session got
		// what it got.
		detail["policy"] = fleetpolicy.Describe(pol)
		detail["policy_version"] = strconv.FormatInt(pol.Version, 10)
	}
	if ses.FourEyes {
		detail["four_eyes"] = "waiting for a second engineer of the fleet"
	}
	requested := audit.Event{Kind: audit.SessionRequested, Actor: audit.User(req.User.ID, req.User.Email), Detail: detail}
	if err := m.cfg.Store.CreateSession(store.WithAudit(ctx, requested), ses); err != nil {
		return nil, fmt.Errorf("recording the session: %w", err)
	}
	// If the session cannot go on, the server closes it, not the engineer.
	bySystem := audit.WithActor(context.WithoutCancel(ctx), audit.System)
	// Valid until the session's latest end: for a four-eyes session,
	// approved at the last moment, its maximum length after that.
	latestEnd := ses.CreatedAt.Add(maxDur)
	if ses.FourEyes {
		latestEnd = latestEnd.Add(m.cfg.FourEyesTimeout)
	}
	cert, err := sessioncert.Sign(m.cfg.UserCA, req.PublicKey, sessioncert.Claims{
		Session: ses.ID, Fleet: ses.FleetName, Device: ses.DeviceName, DeviceID: ses.DeviceID, User: req.User.Email,
		ValidAfter:  now.Add(-sessioncert.Margin),
		ValidBefore: latestEnd.Add(sessioncert.Margin),
	})
	if err != nil {
		m.closeSession(bySystem, ses.ID, control.CloseControlUnavailable, false)
		return nil, err
	}
	if ses.FourEyes {
		// The device is asked only once a second engineer approves.
		r := &store.SupportRequest{DeviceID: ses.DeviceID, Kind: store.RequestFourEyes, SessionID: ses.ID, Reason: req.Reason,
			RequestedBy: req.User.Email, CreatedAt: now, ExpiresAt: now.Add(m.cfg.FourEyesTimeout)}
		if err := m.cfg.Store.CreateSupportRequest(ctx, r); err != nil {
			m.closeSession(bySystem, ses.ID, control.CloseControlUnavailable, false)
			return nil, fmt.Errorf("putting session %s in the queue for a second engineer: %w", ses.ID, err)
		}
		m.log.Info("session waits for a second engineer", "session", ses.ID, "fleet", ses.FleetName, "device", ses.DeviceName,
			"user", req.User.Email, "request", r.ID)
		return &Opened{Session: ses, Certificate: cert, FourEyes: r}, nil
	}
	cmd := m.openCommand(ses, cmdPolicy)
	// Connecting before the command goes out: a device that acts on it at
	// once registers at the relay, which refuses a session not yet
	// connecting; with many sessions asked at once the store's write could
	// lag the device by far more than its dial (issue 11).
	got, _, err := m.cfg.Store.TransitionSession(ctx, ses.ID, []store.SessionState{store.SessionRequested},
		store.SessionConnecting, "", m.now())
	if err != nil {
		m.closeSession(bySystem, ses.ID, control.CloseControlUnavailable, false)
		return nil, fmt.Errorf("recording the session as connecting: %w", err)
	}
	m.wake(ses.ID)
	if err := m.send(cmd); err != nil {
		m.closeSession(bySystem, ses.ID, control.CloseControlUnavailable, false)
		return nil, fmt.Errorf("asking %s to connect: %w: %w", ses.DeviceName, ErrControlUnavailable, err)
	}
	m.log.Info("session requested", "session", ses.ID, "fleet", ses.FleetName, "device", ses.DeviceName, "user", req.User.Email)
	return &Opened{Session: got, Certificate: cert}, nil
}

// openCommand is the open command of ses, carrying cp.
func (m *Manager) openCommand(ses *store.Session, cp *control.Policy) control.Command {
	return control.Command{
		Type: control.TypeOpen, Session: ses.ID, Fleet: ses.FleetName, Device: ses.DeviceName,
		Relay: cmp.Or(ses.RelaySSHAddr, m.cfg.RelayAddr), Relay2: relay2(ses.RelayAddr, m.cfg.DefaultRelay2), Ports: ses.Ports,
		IdleTimeoutS: int(ses.IdleTimeout / time.Second), MaxDurationS: int(ses.MaxDuration / time.Second),
		Policy: cp,
		// A device that gets the command after the server has given up on
		// it must not act on it.
		NotAfter: m.now().Add(m.cfg.ConnectTimeout).Unix(),
	}
}

// limitsWords says, for the audit log, the limits a session got and what
// set each: "idle 15m (server), at most 1h (fleet policy)".
func limitsWords(idle, idleMax, idleCap, maxDur, maxMax, maxCap time.Duration) string {
	by := func(got, most, cap time.Duration) string {
		switch {
		case got < most:
			return "asked"
		case cap > 0 && most == cap:
			return "fleet policy"
		}
		return "server"
	}
	return fmt.Sprintf("idle %s (%s), at most %s (%s)", fleetpolicy.Duration(idle), by(idle, idleMax, idleCap),
		fleetpolicy.Duration(maxDur), by(maxDur, maxMax, maxCap))
}

// Approve is a second engineer's approval of a session of a four-eyes
// fleet, under the fleet's policy as it is now (pol; nil: none): the
// session goes connecting, its request in the queue closes, and the
// device is sent the open command, which names both engineers. The
// engineer who asked cannot approve it, and neither can anyone once the
// session no longer fits the policy: a *fleetpolicy.Refusal says why.
// ErrNotWaiting: the session does not wait for an approval (any more).
func (m *Manager) Approve(ctx context.Context, id string, approver *store.User, pol *store.FleetPolicy) (*store.Session, error) {
	if !m.canSign() {
		return nil, ErrCannotSign
	}
	ses, err := m.cfg.Store.GetSession(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ses.WaitsForApproval() {
		return ses, ErrNotWaiting
	}
	if approver.ID == ses.UserID || strings.EqualFold(approver.Email, ses.UserEmail) {
		return ses, &fleetpolicy.Refusal{Fleet: ses.FleetName, Rule: fleetpolicy.RuleFourEyes, Words: fmt.Sprintf(
			"%s asked for session %s: fleet %s needs a second engineer, another of its operators or owners, to approve it",
			ses.UserEmail, ses.ID, ses.FleetName)}
	}
	if err := fleetpolicy.CheckApproval(pol, ses.FleetName, ses); err != nil {
		return ses, err
	}
	cp := fleetpolicy.Command(pol, ses.UserEmail, approver.Email)
	dev, err := m.cfg.Store.GetDevice(ctx, ses.DeviceID)
	if err != nil {
		return nil, fmt.Errorf("reading session %s's device: %w", id, err)
	}
	if err := fleetpolicy.CheckAgent(dev, cp); err != nil {
		return ses, err
	}
	approved := audit.Event{Kind: audit.FourEyesApproved, Actor: audit.User(approver.ID, approver.Email),
		Detail: map[string]string{"rule": fleetpolicy.RuleFourEyes, "requested_by": ses.UserEmail, "approved_by": approver.Email}}
	got, changed, err := m.cfg.Store.ApproveSession(store.WithAudit(ctx, approved), id, approver.ID, approver.Email, fleetpolicy.Encode(cp), m.now())
	if err != nil {
		return nil, fmt.Errorf("recording the approval of session %s: %w", id, err)
	}
	if !changed {
		return got, ErrNotWaiting
	}
	m.wake(id)
	m.closeFourEyesRequests(context.WithoutCancel(ctx), got, "approved", approver.Email)
	if err := m.send(m.openCommand(got, cp)); err != nil {
		bySystem := audit.WithActor(context.WithoutCancel(ctx), audit.System)
		m.closeSession(bySystem, id, control.CloseControlUnavailable, false)
		return nil, fmt.Errorf("asking %s to connect: %w: %w", got.DeviceName, ErrControlUnavailable, err)
	}
	m.log.Info("session approved by a second engineer", "session", id, "fleet", got.FleetName, "device", got.DeviceName,
		"user", got.UserEmail, "approved_by", approver.Email)
	return got, nil
}

// Deny is a second engineer's refusal of a session of a four-eyes fleet
// (or its own engineer's withdrawal of it): it closes as
// four_eyes_denied. ErrNotWaiting: the session does not wait for an
// approval (any more).
func (m *Manager) Deny(ctx context.Context, id string, by *store.User) (*store.Session, error) {
	ses, err := m.cfg.Store.GetSession(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ses.WaitsForApproval() {
		return ses, ErrNotWaiting
	}
	ctx = store.WithAudit(audit.WithActor(ctx, audit.User(by.ID, by.Email)), audit.Event{Kind: audit.FourEyesDenied,
		Actor:  audit.User(by.ID, by.Email),
		Detail: map[string]string{"rule": fleetpolicy.RuleFourEyes, "requested_by": ses.UserEmail, "denied_by": by.Email}})
	// Only while it still waits: an approval that came first stands.
	got, changed, err := m.cfg.Store.TransitionSession(store.WithAudit(ctx, audit.Event{Kind: audit.SessionClosed,
		Actor: audit.User(by.ID, by.Email), Detail: map[string]string{"reason": string(control.CloseFourEyesDenied)}}),
		id, []store.SessionState{store.SessionRequested}, store.SessionClosed, string(control.CloseFourEyesDenied), m.now())
	if err != nil {
		return nil, fmt.Errorf("closing session %s: %w", id, err)
	}
	if !changed {
		return got, ErrNotWaiting
	}
	m.log.Info("session closed", "session", id, "fleet", got.FleetName, "device", got.DeviceName, "reason", control.CloseFourEyesDenied)
	m.closeFourEyesRequests(context.WithoutCancel(ctx), got, "denied", by.Email)
	m.closedHook(id)
	return got, nil
}

// closeFourEyesRequests closes the four-eyes request of ses in the
// support queue, if it is open, for reason by by.
func (m *Manager) closeFourEyesRequests(ctx context.Context, ses *store.Session, reason, by string) {
	ctx = store.WithoutAudit(ctx)
	rs, err := m.cfg.Store.ListSupportRequests(ctx, store.SupportRequestFilter{SessionID: ses.ID, Kind: store.RequestFourEyes})
	if err != nil {
		m.log.Error("finding a session's four-eyes request", "session", ses.ID, "err", err)
		return
	}
	for _, r := range rs {
		closed := audit.Event{Kind: audit.SupportRequestClosed, Actor: audit.ActorFrom(ctx),
			Detail: map[string]string{"request": r.ID, "reason": reason}}
		if _, _, err := m.cfg.Store.CloseSupportRequest(store.WithAudit(ctx, closed), r.ID, reason, by, m.now()); err != nil {
			m.log.Error("closing a session's four-eyes request", "session", ses.ID, "request", r.ID, "err", err)
		}
	}
}

// relay2 is the command's relay2 for a session placed at addr: empty
// where the device would dial anyway.
func relay2(addr, dflt string) string {
	if addr == dflt {
		return ""
	}
	return addr
}

// joinPorts writes ports as "22,80" for the audit log.
func joinPorts(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// limit is the shorter of asked and max; an unset ask is max.
func limit(asked, max time.Duration) time.Duration {
	if asked <= 0 || asked > max {
		return max
	}
	return asked.Truncate(time.Second)
}

// canSign reports whether this node holds the signing keys.
func (m *Manager) canSign() bool { return m.cfg.ControlKey != nil }

// send signs cmd and publishes it on its device's cmd topic.
func (m *Manager) send(cmd control.Command) error {
	if !m.canSign() {
		return ErrCannotSign
	}
	topic, err := control.CmdTopic(cmd.Fleet, cmd.Device)
	if err != nil {
		return err
	}
	env, err := control.Sign(m.cfg.ControlKey, cmd)
	if err != nil {
		return err
	}
	return m.cfg.Publish(topic, env)
}

// Get returns a session as the store has it.
func (m *Manager) Get(ctx context.Context, id string) (*store.Session, error) {
	return m.cfg.Store.GetSession(ctx, id)
}

// CloseSession closes an open session for reason, tells its device, and returns
// it as closed. Closing a closed session changes nothing and returns it.
func (m *Manager) CloseSession(ctx context.Context, id string, reason control.CloseReason) (*store.Session, error) {
	return m.closeSession(ctx, id, reason, true)
}

// CloseUser closes every open session of the user with email email (as
// sessions record it, also once the user is deleted), only those on
// devices of fleetIDs if it is not nil, as user_removed: their access was
// taken away (the account deleted or reset, or the role that lets them
// reach the fleet's devices removed). The four-eyes sessions they approved
// close too, as approver_removed: the approval stood for a second engineer
// who may reach the device, which they no longer are. (A deletion or role
// taken away at the moment of an approval either refuses it or comes
// after it, store.ApproveSession, so such a session is found here.) It
// returns how many it closed.
func (m *Manager) CloseUser(ctx context.Context, email string, fleetIDs []string) (int, error) {
	n, err := m.closeAll(ctx, store.SessionFilter{UserEmail: email, FleetIDs: fleetIDs, OpenOnly: true}, control.CloseUserRemoved)
	if err != nil {
		return n, fmt.Errorf("closing the open sessions of %s: %w", email, err)
	}
	approved, err := m.closeAll(ctx, store.SessionFilter{ApprovedEmail: email, FleetIDs: fleetIDs, OpenOnly: true}, control.CloseApproverRemoved)
	if err != nil {
		return n + approved, fmt.Errorf("closing the open sessions %s approved: %w", email, err)
	}
	return n + approved, nil
}

// closeAll closes every session filter selects (open ones) for reason and
// returns how many it closed.
func (m *Manager) closeAll(ctx context.Context, filter store.SessionFilter, reason control.CloseReason) (int, error) {
	n, seen := 0, map[string]bool{}
	for {
		// A page at a time (ListSessions returns at most 100); a session
		// listed again was not closed, which must not loop.
		open, err := m.cfg.Store.ListSessions(ctx, filter)
		if err != nil {
			return n, fmt.Errorf("listing them: %w", err)
		}
		if len(open) == 0 {
			return n, nil
		}
		for _, ses := range open {
			if seen[ses.ID] {
				return n, fmt.Errorf("session %s is still open after closing it", ses.ID)
			}
			seen[ses.ID] = true
			if _, err := m.closeSession(ctx, ses.ID, reason, true); err != nil {
				return n, fmt.Errorf("closing session %s: %w", ses.ID, err)
			}
			n++
		}
	}
}

// EngineerClose is the close of an engineer or an operator (DELETE
// /api/v1/sessions/{id}), with ctx's actor as the closer. The device may
// have ended the session a moment before for a reason of its own (its idle
// timeout, its owner's revoke or refusal) that has not reached the server
// yet: the engineer's client closes the session as soon as its connection
// ends, which is usually before the device's word arrives, and recording
// engineer_closed then would lose the device's reason and its consent
// event (issue 11, finding 9). So the device, which alone knows which came
// first, decides: it is told to close, and answers tunnel_down with its own
// reason if it ended the session first, which is recorded as it says, or
// with "closed", recorded as engineer_closed by ctx's actor. The relay is
// cut once the close is recorded, not before: a device whose registration
// the relay cut would report relay_disconnected, ahead of its answer. A
// device that does not answer within CloseGrace (lost, or an agent that
// predates the answer) is closed as engineer_closed then; and at once a
// session the device has not spoken of yet (requested, connecting: an
// engineer's Ctrl-C while it is being woken must not wait on a device that
// may never answer), or whose device is offline. Closing a closed session
// changes nothing and returns it.
func (m *Manager) EngineerClose(ctx context.Context, id string) (*store.Session, error) {
	ses, err := m.cfg.Store.GetSession(ctx, id)
	if err != nil || !ses.Open() {
		return ses, err
	}
	if (ses.State != store.SessionActive && ses.State != store.SessionWaitingConsent) || !m.canSign() || !m.deviceOnline(ctx, ses.DeviceID) {
		return m.closeSession(ctx, id, control.CloseEngineer, true)
	}
	m.mu.Lock()
	c := m.closing[id]
	if c == nil {
		c = &closing{actor: audit.ActorFrom(ctx)}
		m.closing[id] = c
	}
	c.n++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		if c.n--; c.n == 0 && m.closing[id] == c {
			delete(m.closing, id)
		}
		m.mu.Unlock()
	}()
	// From here the close is the server's to finish, even if the caller
	// stops waiting for it (porthole proxy gives its close 2 s): the
	// device's answer is waited for, and the session closed without one,
	// whatever becomes of the request.
	ctx = context.WithoutCancel(ctx)
	if err := m.send(control.Command{Type: control.TypeClose, Session: id, Fleet: ses.FleetName, Device: ses.DeviceName,
		NotAfter: m.now().Add(control.DefaultValidity).Unix()}); err != nil {
		m.log.Warn("could not tell the device a session is being closed", "session", id, "device", ses.DeviceName, "err", err)
		return m.closeSession(ctx, id, control.CloseEngineer, false)
	}
	wctx, cancel := context.WithTimeout(ctx, m.cfg.CloseGrace)
	got, err := m.Wait(wctx, id, store.SessionClosed)
	cancel()
	if err == nil && !got.Open() {
		return got, nil
	}
	return m.closeSession(ctx, id, control.CloseEngineer, false)
}

// deviceOnline reports whether the store has the device online; if it
// cannot tell, it says yes, which costs at most a wait of CloseGrace.
func (m *Manager) deviceOnline(ctx context.Context, id string) bool {
	d, err := m.cfg.Store.GetDevice(ctx, id)
	return err != nil || d.Online
}

// closeSession closes id if it is open, and when tell records that its
// device is due the close command, which it sends if this node can sign
// (else a node that can does: SendDue). The audit log names ctx's actor
// (audit.WithActor) as the closer: the engineer through the API, the
// device, or the system for limits.
func (m *Manager) closeSession(ctx context.Context, id string, reason control.CloseReason, tell bool) (*store.Session, error) {
	closed := audit.Event{Kind: audit.SessionClosed, Actor: audit.ActorFrom(ctx), Detail: map[string]string{"reason": string(reason)}}
	ses, changed, err := m.cfg.Store.CloseSession(store.WithAudit(ctx, closed), id, string(reason), m.now(), tell)
	if err != nil || !changed {
		return ses, err
	}
	m.log.Info("session closed", "session", id, "fleet", ses.FleetName, "device", ses.DeviceName, "reason", reason)
	if ses.FourEyes && ses.ApprovedAt.IsZero() {
		// It closed while it waited for a second engineer: so does its
		// request in the queue, and its device, never asked, is not told.
		// (The store records no close due for it either.)
		m.closeFourEyesRequests(context.WithoutCancel(ctx), ses, string(reason), audit.ActorFrom(ctx).String())
		tell = false
	}
	if tell {
		// Before the relay cuts it, so that the device ends it on the
		// server's word rather than on losing the relay.
		m.SendDue(context.WithoutCancel(ctx), id)
	}
	m.closedHook(id)
	return ses, nil
}

// closeLease is how long a node that took a close command to send
// (ClaimClose) has to send it before another node may.
const closeLease = 10 * time.Second

// SendDue sends the close command of session id if it is due
// (store.Session.CloseDue) and no other node took it, and records it
// sent; a node that cannot sign does nothing. A command that could not be
// sent is due again after closeLease, for this node's sweep or another's.
// The daemon calls it when it hears a session closed.
func (m *Manager) SendDue(ctx context.Context, id string) {
	if !m.canSign() {
		return
	}
	ses, claimed, err := m.cfg.Store.ClaimClose(ctx, id, m.now(), closeLease)
	if err != nil {
		m.log.Error("taking a session's close command to send", "session", id, "err", err)
		return
	}
	if !claimed {
		return // not due, or another node sends it
	}
	if err := m.send(control.Command{Type: control.TypeClose, Session: id, Fleet: ses.FleetName, Device: ses.DeviceName,
		NotAfter: m.now().Add(control.DefaultValidity).Unix()}); err != nil {
		// The device still ends it: the relay cuts it now, and the
		// device's own limits hold.
		m.log.Warn("could not tell the device a session closed; trying again", "session", id, "device", ses.DeviceName, "in", closeLease, "err", err)
		return
	}
	if err := m.cfg.Store.CloseSent(ctx, id); err != nil {
		m.log.Warn("recording a session's close command sent (it may be sent again, which changes nothing)", "session", id, "err", err)
	}
}

// sendDueLimit bounds how many due close commands one sweep sends.
const sendDueLimit = 1000

// SendAllDue sends the close commands due now that no node sent: those of
// sessions closed by nodes that cannot sign while no node that can heard
// of it, and those a node took and did not send. Each sweep does; the
// daemon also calls it when it may have missed changes.
func (m *Manager) SendAllDue(ctx context.Context) {
	if !m.canSign() {
		return
	}
	due, err := m.cfg.Store.ListSessions(ctx, store.SessionFilter{CloseDueBy: m.now(), Limit: sendDueLimit})
	if err != nil {
		if ctx.Err() == nil {
			m.log.Error("reading the sessions whose devices are due a close command", "err", err)
		}
		return
	}
	for _, ses := range due {
		m.SendDue(ctx, ses.ID)
	}
}

func (m *Manager) closedHook(id string) {
	m.wake(id)
	if m.cfg.Closed != nil {
		m.cfg.Closed(id)
	}
}

// rank orders states along a session's life as the server sees it: the
// device is asked first (connecting), and only then says that its owner
// must approve (waiting_consent), so a wait for waiting_consent ends on
// anything that follows, and a wait for connecting ends there too.
func rank(s store.SessionState) int {
	switch s {
	case store.SessionRequested:
		return 1
	case store.SessionConnecting:
		return 2
	case store.SessionWaitingConsent:
		return 3
	case store.SessionActive:
		return 4
	case store.SessionClosed:
		return 5
	}
	return 0
}

// pollInterval is how often Wait reads the store while it waits, for
// changes made by another server node.
const pollInterval = time.Second

// waitReadTimeout bounds each read of the store Wait makes.
const waitReadTimeout = 10 * time.Second

// Wait returns the session once it has reached state want or gone past it
// (a closed session has gone past every state), or when ctx ends, with the
// session as it is then. An error is the store's failure to read it.
//
// ctx bounds the waiting, not the reads: the store is read under a bound of
// its own (waitReadTimeout), without ctx's deadline, so a wait that ends
// before or while the session is read (a timeout of 1ns, or one that
// expires mid-read) still answers the session rather than the read's
// "context deadline exceeded".
func (m *Manager) Wait(ctx context.Context, id string, want store.SessionState) (*store.Session, error) {
	read := func() (*store.Session, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), waitReadTimeout)
		defer cancel()
		return m.cfg.Store.GetSession(rctx, id)
	}
	for {
		ch := m.waiter(id)
		ses, err := read()
		if err != nil {
			m.unwait(id, ch)
			return nil, err
		}
		if rank(ses.State) >= rank(want) || m.isClosed() || ctx.Err() != nil {
			m.unwait(id, ch)
			return ses, nil
		}
		t := time.NewTimer(pollInterval)
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			m.unwait(id, ch)
			return ses, nil
		}
		t.Stop()
		m.unwait(id, ch)
	}
}

func (m *Manager) waiter(id string) chan struct{} {
	ch := make(chan struct{})
	m.mu.Lock()
	m.waiters[id] = append(m.waiters[id], ch)
	m.mu.Unlock()
	return ch
}

func (m *Manager) unwait(id string, ch chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ws := m.waiters[id]
	if i := slices.Index(ws, ch); i >= 0 {
		ws = slices.Delete(ws, i, i+1)
	}
	if len(ws) == 0 {
		delete(m.waiters, id)
	} else {
		m.waiters[id] = ws
	}
}

// Apply follows a change the store announced: a session another node
// moved wakes this node's waiters on it (Wait) at once, instead of at
// their next poll.
func (m *Manager) Apply(ch store.Change) {
	if ch.Kind == store.SessionChanged {
		m.wake(ch.Session)
	}
}

func (m *Manager) wake(id string) {
	m.mu.Lock()
	m.wakeLocked(id)
	m.mu.Unlock()
}

func (m *Manager) wakeLocked(id string) {
	for _, ch := range m.waiters[id] {
		close(ch)
	}
	delete(m.waiters, id)
}

func (m *Manager) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// Activity notes that the engineer of a session sent something. It is
// written to the store at the next sweep, so it may be called often.
func (m *Manager) Activity(id string) {
	m.mu.Lock()
	m.activity[id] = true
	m.mu.Unlock()
}

// HandleState acts on a state message from a device: waiting_consent
// marks a session that waits for its owner's approval, tunnel_up makes a
// session active, tunnel_down closes it with the device's reason. A device
// may speak only of its own sessions; anything else is logged and ignored.
func (m *Manager) HandleState(fleet, device string, st control.State) {
	if st.Kind != control.StateTunnelUp && st.Kind != control.StateTunnelDown && st.Kind != control.StateWaitingConsent {
		if st.Kind == control.StateRejected {
			m.log.Warn("a device rejected a command", "fleet", fleet, "device", device, "reason", st.Reason)
			if st.Reason == control.ReasonMalformed {
				m.outdated(fleet, device)
			}
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ses, err := m.cfg.Store.GetSession(ctx, st.Session)
	if err != nil || ses.FleetName != fleet || ses.DeviceName != device {
		m.log.Warn("a device reported on a session that is not its own", "fleet", fleet, "device", device,
			"state", st.Kind, "session", st.Session, "err", err)
		return
	}
	ctx = audit.WithActor(ctx, audit.Device(ses.DeviceID, fleet, device))
	switch st.Kind {
	case control.StateWaitingConsent:
		_, changed, err := m.cfg.Store.TransitionSession(ctx, ses.ID,
			[]store.SessionState{store.SessionRequested, store.SessionConnecting}, store.SessionWaitingConsent, "", m.now())
		if err != nil {
			m.log.Error("recording that a session waits for consent", "session", ses.ID, "err", err)
			return
		}
		if changed {
			m.log.Info("session waits for the owner's approval", "session", ses.ID, "device", device)
			m.wake(ses.ID)
		}
	case control.StateTunnelUp:
		evs := []audit.Event{{Kind: audit.SessionActive, Actor: audit.ActorFrom(ctx)}}
		if ses.State == store.SessionWaitingConsent {
			// The device went on from waiting: its owner said yes.
			evs = append(evs, audit.Event{Kind: audit.ConsentGranted, Actor: audit.ActorFrom(ctx)})
		}
		_, changed, err := m.cfg.Store.TransitionSession(store.WithAudit(ctx, evs...), ses.ID,
			[]store.SessionState{store.SessionRequested, store.SessionWaitingConsent, store.SessionConnecting}, store.SessionActive, "", m.now())
		if err != nil {
			m.log.Error("recording that a session is active", "session", ses.ID, "err", err)
			return
		}
		if changed {
			m.log.Info("session active", "session", ses.ID, "device", device)
			m.wake(ses.ID)
		}
	case control.StateTunnelDown:
		reason := control.CloseReason(st.Reason) // kept as given, known or not
		if reason == "" {
			reason = control.CloseDeviceClosed
		}
		if reason == control.CloseOnCommand {
			// The device ended the session because the server said close,
			// which the server says of an open session only for an
			// engineer's close (a limit is recorded before the device is
			// told): it is the engineer's, by the engineer when this node
			// holds the close, else as the device reports it.
			reason = control.CloseEngineer
			m.mu.Lock()
			if c := m.closing[ses.ID]; c != nil {
				ctx = audit.WithActor(ctx, c.actor)
			}
			m.mu.Unlock()
		}
		if reason.IsConsent() {
			// What the owner decided (or a wrong code) is a consent event
			// next to the close.
			ctx = store.WithAudit(ctx, audit.Event{Kind: consentEvent(reason), Actor: audit.ActorFrom(ctx), Detail: map[string]string{"reason": string(reason)}})
		}
		if _, err := m.closeSession(ctx, ses.ID, reason, false); err != nil {
			m.log.Error("recording that a device closed a session", "session", ses.ID, "err", err)
		}
	}
}

// outdated closes the sessions being opened on a device that refused a
// command as malformed, whose open command carried the fleet's policy:
// the server signs only commands it can check, so a device that refuses
// one as malformed runs an agent that predates a field it carries, and
// the only optional field such an agent never knew is the policy. Its
// engineers read so at once rather than wait for the connect timeout. A
// rejection names no session, so every such session of the device goes:
// the agent would refuse each one's command the same way.
func (m *Manager) outdated(fleet, device string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := m.cfg.Store.GetFleetByName(ctx, fleet)
	if err != nil {
		return
	}
	d, err := m.cfg.Store.GetDeviceByName(ctx, f.ID, device)
	if err != nil {
		return
	}
	open, err := m.cfg.Store.ListSessions(ctx, store.SessionFilter{DeviceID: d.ID, OpenOnly: true})
	if err != nil {
		m.log.Error("reading the sessions of a device that rejected a command", "fleet", fleet, "device", device, "err", err)
		return
	}
	ctx = audit.WithActor(ctx, audit.Device(d.ID, fleet, device))
	for _, ses := range open {
		if ses.State != store.SessionConnecting || ses.Policy == "" {
			continue
		}
		m.log.Warn("a device's agent is too old for its fleet's policy: it refused the open command", "session", ses.ID,
			"fleet", fleet, "device", device)
		if _, err := m.closeSession(ctx, ses.ID, control.CloseAgentOutdated, false); err != nil {
			m.log.Error("closing a session its device could not open", "session", ses.ID, "err", err)
		}
	}
}

// consentEvent is the audit kind of a consent reason (IsConsent): a wrong
// code for wrong codes, else the owner's refusal.
func consentEvent(r control.CloseReason) audit.Kind {
	if r == control.CloseWrongCodes {
		return audit.WrongCode
	}
	return audit.ConsentDenied
}

// sweepLoop writes activity and enforces the limits every SweepInterval.
func (m *Manager) sweepLoop(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(m.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			m.flushActivity(context.Background())
			return
		case <-t.C:
			m.sweep(ctx)
		}
	}
}

func (m *Manager) flushActivity(ctx context.Context) {
	m.mu.Lock()
	ids := make([]string, 0, len(m.activity))
	for id := range m.activity {
		ids = append(ids, id)
	}
	clear(m.activity)
	m.mu.Unlock()
	if err := m.cfg.Store.TouchSessions(ctx, ids, m.now()); err != nil {
		m.log.Error("recording engineer activity", "sessions", len(ids), "err", err)
	}
}

// sweepLimit bounds how many open sessions one sweep reads.
const sweepLimit = 10000

// sweep closes the open sessions past a limit, and sends the close
// commands due that no node sent.
func (m *Manager) sweep(ctx context.Context) {
	m.flushActivity(ctx)
	defer m.SendAllDue(ctx)
	open, err := m.cfg.Store.ListSessions(ctx, store.SessionFilter{OpenOnly: true, Limit: sweepLimit})
	if err != nil {
		if ctx.Err() == nil {
			m.log.Error("reading open sessions", "err", err)
		}
		return
	}
	now := m.now()
	var heard map[string]bool // nil: not known this sweep
	if m.cfg.RelaysHeard != nil {
		if heard, err = m.cfg.RelaysHeard(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("reading the live relays", "err", err)
		}
	}
	for _, ses := range open {
		reason := m.overdue(ses, now)
		if reason == "" && heard != nil && ses.RelayID != "" && !heard[ses.RelayID] {
			reason = control.CloseRelayLost
		}
		if reason != "" {
			if _, err := m.closeSession(ctx, ses.ID, reason, true); err != nil && ctx.Err() == nil {
				m.log.Error("closing a session past its limit", "session", ses.ID, "reason", reason, "err", err)
			}
		}
	}
}

// overdue says which limit ses has passed at now, if any. The device of a
// four-eyes session is asked when a second engineer approves it, so its
// limits count from then (Asked); until then only the four-eyes timeout
// applies.
func (m *Manager) overdue(ses *store.Session, now time.Time) control.CloseReason {
	asked := ses.Asked()
	switch {
	case ses.WaitsForApproval():
		if !now.Before(ses.CreatedAt.Add(m.cfg.FourEyesTimeout)) {
			return control.CloseFourEyesTimeout
		}
	case !now.Before(asked.Add(ses.MaxDuration)):
		return control.CloseMaxDuration
	case (ses.State == store.SessionRequested || ses.State == store.SessionConnecting) &&
		!now.Before(asked.Add(m.cfg.ConnectTimeout)):
		return control.CloseDeviceUnreachable
	case ses.State == store.SessionWaitingConsent && !now.Before(asked.Add(m.cfg.ConsentTimeout)):
		return control.CloseConsentTimeout
	case ses.State == store.SessionActive:
		last := ses.ActiveAt
		if ses.LastActivity.After(last) {
			last = ses.LastActivity
		}
		if !now.Before(last.Add(ses.IdleTimeout)) {
			return control.CloseIdleTimeout
		}
	}
	return ""
}
