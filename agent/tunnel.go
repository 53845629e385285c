package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/agent/agentconsent"
	"github.com/porthole/porthole/agent/agentstate"
	"github.com/porthole/porthole/agentssh"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/relay/relayproto"
)

// relayDialTimeout bounds dialling the relay and the SSH handshake there.
const relayDialTimeout = 15 * time.Second

// relayCloseGrace is how long a session's relay connection outlives the
// session, for the words saying why to reach its engineers (the SSH server
// gives its channels half a second for that).
const relayCloseGrace = 600 * time.Millisecond

// Tunnels is the SessionHandler of a device with a data path. For each
// verified open command it dials the relay named in the command, logs in
// as the device with its own key (checking the relay's host certificate
// against the host CA), registers a reverse forward for the session, and
// serves its embedded SSH server (package agentssh) on every channel the
// relay forwards: the device listens on no port. It reports tunnel_up once
// registered, and tunnel_down with a reason when the session ends: the
// server's close, the device's own idle timeout and maximum duration (the
// shorter of the server's and the owner's config), or a lost relay. Each
// session has its own relay connection, closed when the session ends, so
// a device with no session holds no connection to the relay.
//
// Before anything is dialled, each session must pass the owner's consent
// (see Consent): in manual mode an open window, whose support code the
// engineer must then give (agentssh's second factor) and whose end ends
// the session; in approve mode the owner's yes, while the server is told
// waiting_consent. A session consent refuses is answered tunnel_down with
// the reason (no_consent, denied, consent_timeout) without dialling.
type Tunnels struct {
	state   *agentstate.State
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	srv     *agentssh.Server
	netDial relayproto.NetDial // reaches the relay, by either protocol
	links   relayLinks
	consent *agentconsent.Consent

	// wg counts every goroutine the sessions start: each session's run,
	// and what runs for it (the relay link's streams, requests discarded);
	// Wait waits for them.
	wg sync.WaitGroup

	mu      sync.Mutex
	open    map[string]*tunnel // guarded by mu
	waiting bool               // guarded by mu: Wait has begun, no session may open
}

// TunnelOptions are the inputs of NewTunnels.
type TunnelOptions struct {
	State  *agentstate.State
	Config Config
	Logger *slog.Logger
	Now    func() time.Time
	// SFTPCommand runs SFTP as Config.RunAs (see agentssh.Config). Empty:
	// this program with the argument "sftp-server" when RunAs names
	// another user than the agent's.
	SFTPCommand []string
	// NetDial connects to the relay: the server's port (the second
	// protocol) or the SSH relay's. Nil: TCP, through the HTTP CONNECT
	// proxy Config.Proxy picks, if one applies.
	NetDial relayproto.NetDial
	// Recorder learns what engineers do. Nil: nothing is recorded.
	Recorder agentssh.Recorder
	// Consent is the owner's consent, shared with the owner's local
	// control (agentconsent.New). Required.
	Consent *agentconsent.Consent
}

// tunnel is one open session.
type tunnel struct {
	id        string
	ports     []int // the open command's (askedPorts): the session reaches these only, within the owner's allow_ports
	idle      time.Duration
	lastInput atomic.Int64 // unix nanoseconds of the last engineer input
	ctx       context.Context
	cancel    context.CancelCauseFunc // with an *agentconsent.End: why, for the engineer
	endOnce   sync.Once
	reason    control.CloseReason // set once, by end
	grant     *agentconsent.Grant // manual consent: the grant of a session in a support window, whose code it needs; guarded by Tunnels.mu
	mu        sync.Mutex
	conn      io.Closer      // the relay connection or registration, once made; guarded by mu
	wg        sync.WaitGroup // the engineers' connections and the idle watch (goServe)
}

// setConn records the relay connection, or closes it if the session ended
// while it was dialled.
func (tn *tunnel) setConn(c io.Closer) bool {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if tn.ctx.Err() != nil {
		c.Close()
		return false
	}
	tn.conn = c
	return true
}

// NewTunnels makes the embedded SSH server for the enrolled device in
// opts.State.
func NewTunnels(opts TunnelOptions) (*Tunnels, error) {
	st := opts.State
	if st == nil || st.Key == nil || st.HostCert == nil {
		return nil, errors.New("agent: tunnels need a loaded State")
	}
	if opts.Consent == nil {
		return nil, errors.New("agent: tunnels need the owner's consent")
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	userCA, _, _, _, err := ssh.ParseAuthorizedKey([]byte(st.Enrollment.UserCA))
	if err != nil {
		return nil, fmt.Errorf("the enrollment record's user CA cannot be read (%w); enroll the device again", err)
	}
	hostKey, err := ssh.NewCertSigner(st.HostCert, st.Key)
	if err != nil {
		return nil, fmt.Errorf("using the host certificate: %w", err)
	}
	t := &Tunnels{state: st, cfg: opts.Config, log: opts.Logger, now: opts.Now, netDial: opts.NetDial, consent: opts.Consent, open: map[string]*tunnel{}}
	t.links.t = t
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.now == nil {
		t.now = time.Now
	}
	if t.netDial == nil {
		t.netDial = opts.Config.NetDial()
	}
	sftp := opts.SFTPCommand
	if len(sftp) == 0 && opts.Config.RunAs != "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding the agent's own binary for SFTP as %s: %w", opts.Config.RunAs, err)
		}
		sftp = []string{exe, "sftp-server"}
	}
	t.srv, err = agentssh.New(agentssh.Config{
		HostKey: hostKey, UserCA: userCA,
		Fleet: st.Enrollment.Fleet, Device: st.Enrollment.Name, DeviceID: st.Enrollment.DeviceID,
		SessionOpen:  t.isOpen,
		SessionPorts: t.sessionPorts,
		SecondFactor: t.secondFactor,
		AllowPorts:   opts.Config.AllowPorts,
		RunAs:        opts.Config.RunAs,
		SFTPCommand:  sftp,
		Activity:     t.activity,
		Recorder:     t.consent.Recorder(opts.Recorder),
		Logger:       t.log.With("component", "ssh"),
		Now:          t.now,
		// Login includes a person reading a support code over the phone.
		HandshakeTimeout: 2 * time.Minute,
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

var _ SessionHandler = (*Tunnels)(nil)

// Open implements SessionHandler: it starts the session in the background.
// An open for a session already open is ignored.
func (t *Tunnels) Open(ctx context.Context, cmd *control.Command, report Reporter) {
	if cmd.Relay == "" {
		report(control.TunnelDown(cmd.Session, control.CloseRelayUnreachable))
		return
	}
	idle := shorter(time.Duration(cmd.IdleTimeoutS)*time.Second, t.cfg.idleTimeout())
	maxDur := shorter(time.Duration(cmd.MaxDurationS)*time.Second, t.cfg.maxDuration())
	tctx, cancel := context.WithCancelCause(ctx)
	tn := &tunnel{id: cmd.Session, ports: askedPorts(cmd), idle: idle, ctx: tctx, cancel: cancel}
	tn.lastInput.Store(t.now().UnixNano())
	t.mu.Lock()
	if _, dup := t.open[cmd.Session]; dup {
		t.mu.Unlock()
		cancel(nil)
		return
	}
	if t.waiting {
		t.mu.Unlock()
		cancel(nil)
		report(control.TunnelDown(cmd.Session, control.CloseAgentStopping))
		return
	}
	t.open[cmd.Session] = tn
	t.wg.Go(func() { t.run(tn, cmd, maxDur, report) })
	t.mu.Unlock()
}

// Wait refuses sessions from now on and waits until every goroutine the
// sessions started has ended. The sessions end with the context given to
// Open (or with CloseAll): the agent calls Wait once its control channel
// has stopped.
func (t *Tunnels) Wait() {
	t.mu.Lock()
	t.waiting = true
	t.mu.Unlock()
	t.wg.Wait()
}

// Close implements SessionHandler: the server closed the session. A
// session this device does not hold (it ended, and its tunnel_down went
// out then; or its open never arrived) is answered tunnel_down closed at
// once: a server that waits for the device's word on an engineer's close
// need not wait longer, and one that heard the device's own reason
// before changes nothing.
func (t *Tunnels) Close(_ context.Context, cmd *control.Command, report Reporter) {
	t.mu.Lock()
	tn := t.open[cmd.Session]
	t.mu.Unlock()
	if tn == nil {
		report(control.TunnelDown(cmd.Session, control.CloseOnCommand))
		return
	}
	t.end(tn, control.CloseOnCommand)
}

// End ends session on the device's own account, for reason, and reports
// whether it was open.
func (t *Tunnels) End(session string, reason control.CloseReason) bool {
	t.mu.Lock()
	tn := t.open[session]
	t.mu.Unlock()
	if tn == nil {
		return false
	}
	t.end(tn, reason)
	return true
}

// CloseAll ends every open session for reason, at once.
func (t *Tunnels) CloseAll(reason control.CloseReason) {
	t.mu.Lock()
	all := make([]*tunnel, 0, len(t.open))
	for _, tn := range t.open {
		all = append(all, tn)
	}
	t.mu.Unlock()
	for _, tn := range all {
		t.end(tn, reason)
	}
}

// Open sessions, for status displays.
func (t *Tunnels) Sessions() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	ids := make([]string, 0, len(t.open))
	for id := range t.open {
		ids = append(ids, id)
	}
	return ids
}

// askedPorts are the ports a session may reach, before its owner's
// allow_ports (which the SSH server applies): those its command asked
// for, and when the fleet's policy in the command names ports, only those
// of them it names. The policy can thus narrow what the owner allows,
// never widen it.
func askedPorts(cmd *control.Command) []int {
	ports := slices.Clone(cmd.Ports)
	if p := cmd.Policy; p != nil && p.Ports != nil {
		ports = slices.DeleteFunc(ports, func(port int) bool { return !slices.Contains(p.Ports, port) })
	}
	return ports
}

// shorter is the server's limit when it set one shorter than the device's.
func shorter(server, device time.Duration) time.Duration {
	if server > 0 && server < device {
		return server
	}
	return device
}

// secondFactor is agentssh's SecondFactor: the support code of the
// session's window, in manual mode; nothing otherwise.
func (t *Tunnels) secondFactor(session string) (string, func(string) error) {
	t.mu.Lock()
	tn := t.open[session]
	t.mu.Unlock()
	if tn == nil || tn.grant == nil {
		return "", nil
	}
	g := tn.grant
	return "", func(answer string) error { return t.consent.CheckCode(g, session, answer) }
}

func (t *Tunnels) isOpen(session string) bool {
	t.mu.Lock()
	tn := t.open[session]
	t.mu.Unlock()
	return tn != nil && tn.ctx.Err() == nil
}

// sessionPorts are the ports session's open command asked for.
func (t *Tunnels) sessionPorts(session string) []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tn := t.open[session]; tn != nil {
		return tn.ports
	}
	return nil
}

func (t *Tunnels) activity(session string) {
	t.mu.Lock()
	tn := t.open[session]
	t.mu.Unlock()
	if tn != nil {
		tn.lastInput.Store(t.now().UnixNano())
	}
}

// end ends a session once: its engineers' connections and processes (by
// the context they are served with) and its relay connection.
func (t *Tunnels) end(tn *tunnel, reason control.CloseReason) {
	tn.endOnce.Do(func() {
		tn.reason = reason
		tn.mu.Lock()
		tn.cancel(&agentconsent.End{Reason: reason, Words: t.endWords(reason)})
		if c := tn.conn; c != nil {
			// The engineers' connections end with the context, their
			// processes killed at once; the relay connection lasts a
			// moment more so that the reason reaches them.
			time.AfterFunc(relayCloseGrace, func() { c.Close() })
		}
		tn.mu.Unlock()
	})
}

// endWords says to the engineer why the device ended their session.
func (t *Tunnels) endWords(reason control.CloseReason) string {
	switch reason {
	case control.CloseIdleTimeout:
		return "the session ended after " + shortDuration(t.cfg.idleTimeout()) + " without input"
	case control.CloseMaxDuration:
		return "the session reached its longest allowed duration"
	case control.CloseOnCommand, control.CloseRelayDisconnected, control.CloseRelayRefused, control.CloseRelayUnreachable, control.CloseRelayBusy:
		return "the session was closed"
	}
	return t.consent.EndWords(reason)
}

// shortDuration formats a duration for the engineer: 15m0s reads 15m.
func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}

// run is one session's life: consent, dial, register, serve, end, report.
func (t *Tunnels) run(tn *tunnel, cmd *control.Command, maxDur time.Duration, report Reporter) {
	log := t.log.With("session", tn.id)
	defer func() {
		t.end(tn, control.CloseAgentStopping) // no-op unless nothing ended it yet
		t.consent.SessionEnded(tn.id)
		log.Info("session ended", "reason", tn.reason)
		report(control.TunnelDown(tn.id, tn.reason))
		// Only now: a close that comes meanwhile finds the session and
		// changes nothing, rather than answering closed before the
		// device's own reason goes out.
		t.mu.Lock()
		delete(t.open, tn.id)
		t.mu.Unlock()
	}()
	maxTimer := time.AfterFunc(maxDur, func() { t.end(tn, control.CloseMaxDuration) })
	defer maxTimer.Stop()

	g, refused := t.consent.Admit(tn.ctx, cmd, report)
	if g == nil {
		if tn.ctx.Err() == nil { // else it was ended already, and says why
			t.end(tn, refused)
		}
		return
	}
	if g.InWindow() {
		t.mu.Lock()
		tn.grant = g
		t.mu.Unlock()
		// The window's end ends the session, for the window's reason.
		ended := g.Ended()
		stop := context.AfterFunc(ended, func() {
			reason := control.CloseConsentExpired
			if e, ok := errors.AsType[*agentconsent.End](context.Cause(ended)); ok {
				reason = e.Reason
			}
			t.end(tn, reason)
		})
		defer stop()
	}
	// The relay's second protocol first, on the server's own port; the SSH
	// relay the command names if the server does not speak it.
	reg, err := t.registerV2(tn, cmd.Relay2)
	if !errors.Is(err, errNoV2) {
		if err != nil {
			log.Warn("could not reach the relay", "err", err)
			t.end(tn, relayFailure(err))
			return
		}
		if !t.up(tn, reg, report, log) { // ended while dialling
			return
		}
		select {
		case <-reg.ended():
		case <-tn.ctx.Done():
		}
		t.end(tn, control.CloseRelayDisconnected) // a no-op if ended otherwise
		tn.wg.Wait()
		return
	}
	relayAddr := cmd.Relay

	conn, chans, err := t.register(tn, relayAddr)
	if err != nil {
		log.Warn("could not reach the relay", "relay", relayAddr, "err", err)
		t.end(tn, relayFailure(err))
		return
	}
	if !t.up(tn, conn, report, log, "relay", relayAddr) { // ended while dialling
		return
	}
	for nc := range chans {
		if nc.ChannelType() != "forwarded-tcpip" {
			nc.Reject(ssh.Prohibited, "a device accepts only the relay's forwarded channels")
			continue
		}
		ch, reqs, err := nc.Accept()
		if err != nil {
			continue
		}
		t.wg.Go(func() { ssh.DiscardRequests(reqs) })
		if !tn.goServe(func() {
			conn := agentssh.ChannelConn(ch, conn.LocalAddr(), conn.RemoteAddr())
			if err := t.srv.ServeConn(tn.ctx, conn, tn.id); err != nil {
				log.Info("engineer connection ended", "err", err)
			}
		}) {
			ch.Close()
		}
	}
	// The relay connection is gone: by end, or dropped.
	t.end(tn, control.CloseRelayDisconnected)
	tn.wg.Wait()
}

// up records tn's relay connection or registration c and says the session
// is open: to the owner's consent, to the server (tunnel_up), and to the
// idle watch. False if the session ended while c was made (c is closed).
func (t *Tunnels) up(tn *tunnel, c io.Closer, report Reporter, log *slog.Logger, attrs ...any) bool {
	if !tn.setConn(c) {
		return false
	}
	log.Info("session open: registered at the relay", attrs...)
	t.consent.SessionUp(tn.id)
	report(control.State{Kind: control.StateTunnelUp, Session: tn.id})
	tn.goServe(func() { t.watchIdle(tn) })
	return true
}

// goServe runs serve on a goroutine counted in tn.wg, unless the session
// has ended: its end (under mu) comes before the wait for tn.wg, so no
// goroutine is added to it while it is waited for.
func (tn *tunnel) goServe(serve func()) bool {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if tn.ctx.Err() != nil {
		return false
	}
	tn.wg.Go(serve)
	return true
}

// registerV2 registers tn on the device's connection of the relay's second
// protocol, dialling it if need be; errNoV2 if the server does not speak it.
// While the relay turns the device away for a moment (it is overloaded, or
// could not check the device), it tries again, within relayDialTimeout.
func (t *Tunnels) registerV2(tn *tunnel, placed string) (*registration, error) {
	addr, u, err := t.relayAddr(placed)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(tn.ctx, relayDialTimeout)
	defer cancel()
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		reg, err := t.tryRegisterV2(ctx, tn, addr, u)
		if err == nil || relayFailure(err) != control.CloseRelayBusy {
			return reg, err
		}
		t.log.Info("the relay turned the session away for now; trying again", "session", tn.id, "err", err, "in", wait)
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, err
		}
	}
}

// tryRegisterV2 is one attempt of registerV2.
func (t *Tunnels) tryRegisterV2(ctx context.Context, tn *tunnel, addr string, u *url.URL) (*registration, error) {
	l, err := t.links.acquire(ctx, addr, u)
	if err != nil {
		return nil, err
	}
	st, err := t.links.register(ctx, l, tn)
	if err != nil {
		t.links.release(l, tn.id)
		return nil, err
	}
	return &registration{ls: &t.links, l: l, st: st, id: tn.id}, nil
}

// errRefused marks a relay that answered but said no.
var errRefused = errors.New("refused by the relay")

// relayFailure is the reason a session ends for err, the failure to reach
// the relay and register the session there: the relay's own word when it
// gave one (second protocol), refused for a relay that said no, busy for
// one that closed the connection before the device could log in (its caps
// on connections in their handshake), unreachable otherwise.
func relayFailure(err error) control.CloseReason {
	if re, ok := errors.AsType[*relayproto.ReplyError](err); ok {
		switch re.Code {
		case relayproto.CodeUnavailable:
			return control.CloseRelayBusy
		case relayproto.CodeClosed:
			return control.CloseOnCommand // the server closed it meanwhile, and says why
		}
		return control.CloseRelayRefused
	}
	switch {
	case errors.Is(err, errRefused):
		return control.CloseRelayRefused
	case relayproto.ClosedByPeer(err):
		return control.CloseRelayBusy
	}
	return control.CloseRelayUnreachable
}

// register dials the relay, logs in as the device and registers the
// session's forward.
func (t *Tunnels) register(tn *tunnel, addr string) (ssh.Conn, <-chan ssh.NewChannel, error) {
	ctx, cancel := context.WithTimeout(tn.ctx, relayDialTimeout)
	defer cancel()
	nc, err := t.netDial(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	user, _ := control.DeviceUsername(t.state.Enrollment.Fleet, t.state.Enrollment.Name)
	hostCA, _, _, _, err := ssh.ParseAuthorizedKey([]byte(t.state.Enrollment.HostCA))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("the enrollment record's host CA: %w", err)
	}
	checker := &ssh.CertChecker{
		IsHostAuthority: func(auth ssh.PublicKey, _ string) bool { return bytes.Equal(auth.Marshal(), hostCA.Marshal()) },
		Clock:           t.now,
	}
	conn, chans, reqs, err := ssh.NewClientConn(nc, addr, &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(t.state.Key)},
		HostKeyCallback:   checker.CheckHostKey,
		HostKeyAlgorithms: []string{ssh.CertAlgoED25519v01},
		Timeout:           relayDialTimeout,
	})
	if err != nil {
		nc.Close()
		if relayproto.ClosedByPeer(err) {
			return nil, nil, fmt.Errorf("the relay closed the connection before the device could log in: %w", err)
		}
		return nil, nil, fmt.Errorf("%w: %w", errRefused, err)
	}
	nc.SetDeadline(time.Time{})
	t.wg.Go(func() { ssh.DiscardRequests(reqs) })
	payload := ssh.Marshal(struct {
		Addr string
		Port uint32
	}{tn.id, 0})
	ok, _, err := conn.SendRequest("tcpip-forward", true, payload)
	if err != nil || !ok {
		conn.Close()
		return nil, nil, fmt.Errorf("%w: the relay did not take the session's forward (%v)", errRefused, err)
	}
	return conn, chans, nil
}

// watchIdle ends the session after idle without engineer input.
func (t *Tunnels) watchIdle(tn *tunnel) {
	tick := min(max(tn.idle/10, 10*time.Millisecond), time.Second)
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for {
		select {
		case <-tn.ctx.Done():
			return
		case <-tk.C:
			if t.now().Sub(time.Unix(0, tn.lastInput.Load())) >= tn.idle {
				t.end(tn, control.CloseIdleTimeout)
				return
			}
		}
	}
}
