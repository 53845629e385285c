package agentconsent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/porthole/porthole/agent/agentlog"
	"github.com/porthole/porthole/agentssh"
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/sessioncert"
)

// Mode is how the device's owner lets engineers in. It comes from the
// owner's config alone: no command, answer or file from the server can set
// it or make it looser. The fleet's policy may ask for more consent for a
// session (the consent floor in its signed open command): the session then
// needs the stricter of the two (Stricter).
type Mode string

// The consent modes.
const (
	// Manual (the default): the owner opens a support window
	// (porthole-agent request, or the local page) and reads out the
	// support code; an engineer gets in with a session certificate and
	// that code, only while the window is open.
	Manual Mode = "manual"
	// Approve: each session waits until the owner approves it
	// (porthole-agent approve, or the local page), seeing who asks and
	// why; unanswered within the approval timeout means denied.
	Approve Mode = "approve"
	// Auto: any session the server signs opens, with no code: for
	// fleets whose operator owns the devices.
	Auto Mode = "auto"
)

// Limits of consent.
const (
	// DefaultSupportWindow is how long a window lasts when the owner does
	// not say; MaxSupportWindow is the longest one may last.
	DefaultSupportWindow = time.Hour
	MaxSupportWindow     = 24 * time.Hour
	// DefaultApprovalTimeout is how long the owner has to answer a
	// session in approve mode; MaxApprovalTimeout is the longest the
	// config may give (the server gives up a minute later).
	DefaultApprovalTimeout = 5 * time.Minute
	MaxApprovalTimeout     = 10 * time.Minute
	// MaxWrongCodes wrong support codes close the window.
	MaxWrongCodes = 5
)

// wrongCodesGrace is how long the sessions of a window closed by wrong
// codes last, for the last refusal to reach the engineer.
const wrongCodesGrace = 500 * time.Millisecond

// Consent events in the event log.
const (
	eventWindowOpened    = "support_window_opened"
	eventWindowClosed    = "support_window_closed"
	eventCodeAccepted    = "support_code_accepted"
	eventCodeWrong       = "support_code_wrong"
	eventSessionRefused  = "session_refused"
	eventSessionAdmitted = "session_admitted"
	eventApprovalAsked   = "approval_asked"
	eventApproved        = "session_approved"
	eventDenied          = "session_denied"
	eventRevoked         = "owner_revoked"
	eventServerNotTold   = "server_not_told"
)

// Server is the server's support queue as the device reaches it
// with its own credential; *apiclient.Client with Options.Device is one.
type Server interface {
	PostDeviceRequest(ctx context.Context, req apitype.DeviceRequest) (*apitype.SupportRequest, error)
	CloseDeviceRequest(ctx context.Context, id, reason string) (*apitype.SupportRequest, error)
}

// Options are the inputs of New.
type Options struct {
	// Config is the owner's consent section of agent.yaml: the mode
	// (empty: manual) and the approval timeout (zero: 5 min).
	Config Config
	// Fleet and Device name this device, for the owner and the prompt.
	Fleet, Device string
	// Server receives support and approval requests. Nil: none is sent
	// (the owner still reads out the code; engineers just find no entry in
	// the queue).
	Server Server
	// Log is the agent's event log (agentlog.Open), which the caller
	// closes after Close. Nil: nothing is logged there.
	Log *agentlog.Log
	// Logger gets the agent's own lines. Nil: nothing is logged.
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// Consent keeps the owner's consent on a running agent: the support window
// and its code (manual), the sessions waiting for the owner (approve), and
// who is connected, for the owner to see.
//
// Manual mode, step by step:
//
//  1. The owner asks for support (Request): a window opens for a
//     duration (default 1 h, at most a day) with a fresh support code,
//     and a support request (device, reason, window end; never the code)
//     goes to the server's queue. Asking again while it is open shows
//     the same window and code.
//  2. An open command for this device (verified by package control)
//     arrives. Without an open window it is answered at once with
//     tunnel_down no_consent, and the relay is not dialled. With one,
//     the session belongs to that window.
//  3. An engineer logs in to the device's SSH server with the session's
//     certificate; the server then asks "Support code for <device>: " by
//     keyboard-interactive. The answer is compared in constant time. Each
//     wrong code counts against the window; the fifth closes it
//     (wrong_codes), which is logged and told to the server.
//  4. The window ends when its time is up (consent_expired), on the
//     fifth wrong code, or when the owner revokes; its sessions end with
//     it. A new window has a new code: an old one never works again.
//
// Windows live in memory only: the code is never written anywhere, and a
// restarted agent has no window.
type Consent struct {
	mode            Mode
	fleet, device   string
	approvalTimeout time.Duration
	server          Server
	log             *slog.Logger
	now             func() time.Time
	events          *agentlog.Log // nil: no event log
	ctx             context.Context
	cancel          context.CancelFunc
	wg              sync.WaitGroup // talks with the server

	mu       sync.Mutex
	window   *window                 // guarded by mu; the open window, or nil
	pending  map[string]*approval    // guarded by mu; sessions waiting for the owner, by session id
	sessions map[string]*sessionInfo // guarded by mu; sessions admitted and not yet ended
	closed   bool                    // guarded by mu
}

// window is one support window.
type window struct {
	code   string // canonical; "" when the mode needs none
	reason string
	opened time.Time
	ends   time.Time
	ctx    context.Context // ends with the window; its cause is a *End
	cancel context.CancelCauseFunc
	timer  *time.Timer
	told   chan struct{} // closed after the first try to tell the server

	// guarded by Consent.mu
	wrong     int
	requestID string              // the server's support request, once told
	serverErr string              // why the server could not be told, while it cannot
	endReason control.CloseReason // why the window ended; "" while open
}

// approval is a session waiting for the owner (approve mode).
type approval struct {
	session  string
	fleet    string
	asked    time.Time
	deadline time.Time
	answer   chan bool // true: approved

	// guarded by Consent.mu
	user, reason string // from the server; "" until it answered
	requestID    string
	serverErr    string
}

// sessionInfo is a session the owner can see.
type sessionInfo struct {
	id    string
	since time.Time
	state string // SessionWaitingOwner, SessionConnecting, SessionOpen
	// The engineer, from the session certificate: every connection of a
	// session is theirs, since the certificate is for their key alone.
	user           string
	conns          int
	connectedSince time.Time
}

// States of a session as the owner sees them.
const (
	SessionWaitingOwner = "waiting_for_owner"
	SessionConnecting   = "connecting"
	SessionOpen         = "open"
)

// End is why consent for a session ended, the cause with which its
// context is cancelled (context.WithCancelCause): the tunnel_down reason,
// and the sentence the engineer is shown (EndWords).
type End struct {
	Reason control.CloseReason
	Words  string
}

func (e *End) Error() string { return e.Words }

// Grant is what Admit lets a session do. In manual mode the session lives
// in a support window: it needs the window's code (CheckCode) and ends
// with the window (Ended).
type Grant struct {
	window *window // manual: the window the session lives in, whose code it needs
}

// InWindow reports whether the session lives in a support window, whose
// code it needs.
func (g *Grant) InWindow() bool { return g.window != nil }

// Ended is a context that ends with the session's support window, its
// cause an *End saying why; nil for a session outside a window.
func (g *Grant) Ended() context.Context {
	if g.window == nil {
		return nil
	}
	return g.window.ctx
}

// New checks opts and returns the device's consent, with no window
// open. Close it when the agent stops.
func New(opts Options) (*Consent, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	mode := opts.Config.ModeOrDefault()
	c := &Consent{mode: mode, fleet: opts.Fleet, device: opts.Device, server: opts.Server, log: opts.Logger, now: opts.Now, events: opts.Log,
		approvalTimeout: opts.Config.ApprovalTimeout,
		pending:         map[string]*approval{}, sessions: map[string]*sessionInfo{}}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.approvalTimeout == 0 {
		c.approvalTimeout = DefaultApprovalTimeout
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// strictness orders the modes: auto < approve < manual.
func strictness(m Mode) int {
	switch m {
	case Auto:
		return 0
	case Approve:
		return 1
	}
	return 2 // manual, and anything unknown: the strictest
}

// Stricter is the stricter of the owner's mode and a fleet's consent
// floor (empty: none): a floor can raise the consent a session needs,
// never lower it.
func Stricter(owner Mode, floor string) Mode {
	if floor == "" || strictness(Mode(floor)) <= strictness(owner) {
		return owner
	}
	if f := Mode(floor); f == Approve || f == Manual {
		return f
	}
	return Manual // a floor this agent does not know: the strictest
}

// CheckMode refuses a mode that is not manual, approve or auto.
func CheckMode(m Mode) error {
	switch m {
	case Manual, Approve, Auto:
		return nil
	}
	return fmt.Errorf("consent %q must be manual, approve or auto", m)
}

// Mode is the owner's consent mode.
func (c *Consent) Mode() Mode { return c.mode }

// Device is the device's name, as the owner and engineers read it.
func (c *Consent) Device() string { return c.device }

// Close closes the window (telling the server, briefly) and waits for the
// talks with the server to end. It may be called more than once.
func (c *Consent) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	w := c.window
	var id string
	if w != nil {
		id = w.requestID
		c.closeWindowLocked(w, control.CloseAgentStopping)
	}
	c.mu.Unlock()
	c.cancel()
	if id != "" && c.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if _, err := c.server.CloseDeviceRequest(ctx, id, string(control.CloseAgentStopping)); err != nil {
			c.log.Warn("could not tell the server the support window closed", "request", id, "err", err)
		}
		cancel()
	}
	c.wg.Wait()
	return nil
}

// Revoked records in the event log that the owner revoked access: the
// window closed (Revoke) and sessions ended (by whoever runs them).
func (c *Consent) Revoked(sessions int, windowClosed bool) {
	detail := fmt.Sprintf("ended %d session(s)", sessions)
	if windowClosed {
		detail += " and closed the support window"
	}
	c.record(agentlog.Event{Event: eventRevoked, Detail: detail})
}

// record writes ev to the event log, if there is one.
func (c *Consent) record(ev agentlog.Event) {
	if c.events == nil {
		return
	}
	ev.Time = c.now().UTC()
	if err := c.events.Write(ev); err != nil {
		c.log.Error("the event log cannot be written", "event", ev.Event, "err", err)
	}
}

// ErrClosed is returned once the agent is stopping.
var ErrClosed = errors.New("agentconsent: the agent is stopping")

// Request opens a support window for d (DefaultSupportWindow when zero),
// or returns the one that is open (opened false). In manual mode the
// window has a support code. The server is told (reason and window end,
// never the code); Request waits a few seconds for that, then goes on
// trying in the background while the window lasts.
func (c *Consent) Request(reason string, d time.Duration) (st WindowStatus, opened bool, err error) {
	if d == 0 {
		d = DefaultSupportWindow
	}
	if d < time.Second || d > MaxSupportWindow {
		return WindowStatus{}, false, fmt.Errorf("a support window lasts from 1s to %v, not %v", MaxSupportWindow, d)
	}
	reason = strings.TrimSpace(reason)
	if len(reason) > 500 {
		return WindowStatus{}, false, fmt.Errorf("the reason is %d bytes; keep it under 500", len(reason))
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return WindowStatus{}, false, ErrClosed
	}
	if w := c.window; w != nil {
		st := c.windowStatusLocked(w)
		c.mu.Unlock()
		return st, false, nil
	}
	now := c.now()
	w := &window{reason: reason, opened: now, ends: now.Add(d), told: make(chan struct{})}
	if c.mode == Manual {
		w.code = newSupportCode()
	}
	w.ctx, w.cancel = context.WithCancelCause(c.ctx)
	w.timer = time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.closeWindowLocked(w, control.CloseConsentExpired)
	})
	c.window = w
	c.record(agentlog.Event{Event: eventWindowOpened, Detail: fmt.Sprintf("until %s; reason: %s", w.ends.UTC().Format(time.RFC3339), orNone(reason))})
	c.log.Info("support window opened", "until", w.ends, "reason", reason)
	if c.server == nil {
		close(w.told)
	} else {
		c.wg.Go(func() { c.tellWindow(w) })
	}
	c.mu.Unlock()

	select {
	case <-w.told:
	case <-time.After(5 * time.Second):
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.windowStatusLocked(w), true, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none given)"
	}
	return s
}

// tellWindow puts the window's support request in the server's queue,
// trying again with backoff until it is there or the window ends.
func (c *Consent) tellWindow(w *window) {
	delay := time.Second
	first := true
	for {
		left := time.Until(w.ends)
		if left < time.Second {
			left = time.Second
		}
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		r, err := c.server.PostDeviceRequest(ctx, apitype.DeviceRequest{Reason: w.reason, ForS: int(left.Round(time.Second) / time.Second)})
		cancel()
		c.mu.Lock()
		ended := w.endReason
		if err == nil {
			w.requestID, w.serverErr = r.ID, ""
		} else {
			w.serverErr = err.Error()
		}
		c.mu.Unlock()
		if first {
			close(w.told)
			first = false
		}
		if err == nil {
			c.log.Info("support request in the server's queue", "request", r.ID)
			if ended != "" { // the window ended while the request was on its way
				c.closeRequest(r.ID, string(ended))
			}
			return
		}
		c.log.Warn("could not tell the server about the support window; trying again", "in", delay, "err", err)
		if ended != "" {
			return
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-w.ctx.Done():
			t.Stop()
			return
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// closeRequest closes a request on the server, in the background.
func (c *Consent) closeRequest(id, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeRequestLocked(id, reason)
}

// closeRequestLocked is closeRequest with c.mu held. Once Close has
// begun, it is Close's job.
func (c *Consent) closeRequestLocked(id, reason string) {
	if c.server == nil || id == "" || c.closed {
		return
	}
	c.wg.Go(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 10*time.Second)
		defer cancel()
		if _, err := c.server.CloseDeviceRequest(ctx, id, reason); err != nil {
			c.log.Warn("could not tell the server a request closed", "request", id, "reason", reason, "err", err)
			c.record(agentlog.Event{Event: eventServerNotTold, Reason: reason, Detail: fmt.Sprintf("request %s: %v", id, err)})
		}
	})
}

// closeWindowLocked ends w for reason, if it is still open: its sessions
// end with it, and the server is told.
func (c *Consent) closeWindowLocked(w *window, reason control.CloseReason) {
	if w.endReason != "" {
		return
	}
	w.endReason = reason
	w.timer.Stop()
	cause := &End{Reason: reason, Words: c.EndWords(reason)}
	if reason == control.CloseWrongCodes {
		// The fifth wrong code is refused with a banner saying the window
		// closed; ending the sessions at once would cut the connection
		// before the banner is out. No code passes in the meantime.
		time.AfterFunc(wrongCodesGrace, func() { w.cancel(cause) })
	} else {
		w.cancel(cause)
	}
	if c.window == w {
		c.window = nil
	}
	c.record(agentlog.Event{Event: eventWindowClosed, Reason: string(reason)})
	c.log.Info("support window closed", "reason", reason)
	c.closeRequestLocked(w.requestID, string(reason))
}

// EndWords says to an engineer why consent ended their session.
func (c *Consent) EndWords(reason control.CloseReason) string {
	switch reason {
	case control.CloseRevoked:
		return fmt.Sprintf("the owner of %s ended this session", c.device)
	case control.CloseConsentExpired:
		return fmt.Sprintf("the owner's support window on %s has ended, and this session with it", c.device)
	case control.CloseWrongCodes:
		return fmt.Sprintf("%s closed its support window after %d wrong support codes", c.device, MaxWrongCodes)
	case control.CloseAgentStopping:
		return fmt.Sprintf("the agent on %s is stopping", c.device)
	}
	return "the session was closed"
}

// Revoke closes the support window, if one is open, for the owner's
// revoke. Ending the sessions is the data path's job (agent's
// Tunnels.CloseAll); Revoked records both.
func (c *Consent) Revoke() (windowClosed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.window; w != nil {
		c.closeWindowLocked(w, control.CloseRevoked)
		windowClosed = true
	}
	return windowClosed
}

// Admit decides whether the session cmd opens may go ahead, for the
// device's mode raised to the fleet's consent floor when the command
// carries one (Stricter), and reports waiting_consent while the owner
// decides in approve mode (it blocks until then, or until ctx ends). A
// refusal is the tunnel_down reason. The owner's log says which mode
// applied and why, and what the fleet's policy said of the session: the
// ports it allows, who asked and who approved it.
func (c *Consent) Admit(ctx context.Context, cmd *control.Command, report func(control.State)) (*Grant, control.CloseReason) {
	mode, policy := c.mode, ""
	if p := cmd.Policy; p != nil {
		mode = Stricter(c.mode, p.ConsentFloor)
		policy = PolicyWords(p, c.mode, mode)
	}
	switch mode {
	case Auto:
		c.admitted(cmd.Session, nil, withPolicy("auto", policy))
		return &Grant{}, ""
	case Approve:
		return c.waitApproval(ctx, cmd, policy, report)
	}
	c.mu.Lock()
	w := c.window
	if w == nil || w.endReason != "" {
		c.mu.Unlock()
		c.record(agentlog.Event{Event: eventSessionRefused, Session: cmd.Session, Reason: string(control.CloseNoConsent),
			Detail: withPolicy("no support window is open", policy)})
		c.log.Info("session refused: no support window is open", "session", cmd.Session, "policy", policy)
		return nil, control.CloseNoConsent
	}
	c.mu.Unlock()
	c.admitted(cmd.Session, w, withPolicy("support window, code required", policy))
	return &Grant{window: w}, ""
}

// PolicyWords says, for the owner's log, what the fleet's policy in an
// open command asked of the session, with the mode that applied
// (applied, raised from the owner's when the floor is stricter): "fleet
// policy: consent floor approve (stricter than the owner's auto); ports
// 22; requested by alice@example.com, approved by bob@example.com
// (four-eyes)".
func PolicyWords(p *control.Policy, owner, applied Mode) string {
	var parts []string
	if p.ConsentFloor != "" {
		if applied != owner {
			parts = append(parts, fmt.Sprintf("consent floor %s (stricter than the owner's %s)", p.ConsentFloor, owner))
		} else {
			parts = append(parts, fmt.Sprintf("consent floor %s (the owner's %s is as strict or stricter)", p.ConsentFloor, owner))
		}
	}
	if p.Ports != nil {
		if len(p.Ports) == 0 {
			parts = append(parts, "no ports")
		} else {
			ports := make([]string, len(p.Ports))
			for i, port := range p.Ports {
				ports[i] = strconv.Itoa(port)
			}
			parts = append(parts, "ports "+strings.Join(ports, ", ")+" (within the owner's allow_ports)")
		}
	}
	switch {
	case p.ApprovedBy != "":
		parts = append(parts, fmt.Sprintf("requested by %s, approved by %s (four-eyes)", p.RequestedBy, p.ApprovedBy))
	case p.RequestedBy != "":
		parts = append(parts, "requested by "+p.RequestedBy)
	}
	return "fleet policy: " + strings.Join(parts, "; ")
}

// withPolicy adds the policy's words, if any, to a log detail.
func withPolicy(detail, policy string) string {
	if policy == "" {
		return detail
	}
	return detail + "; " + policy
}

// admitted records a session let in.
func (c *Consent) admitted(session string, w *window, how string) {
	c.mu.Lock()
	c.sessions[session] = &sessionInfo{id: session, since: c.now(), state: SessionConnecting}
	c.mu.Unlock()
	c.record(agentlog.Event{Event: eventSessionAdmitted, Session: session, Detail: how})
}

// waitApproval holds a session until the owner answers (approve mode, or
// a fleet's floor of approve); policy is what the fleet's policy said of
// it, for the log.
func (c *Consent) waitApproval(ctx context.Context, cmd *control.Command, policy string, report func(control.State)) (*Grant, control.CloseReason) {
	now := c.now()
	a := &approval{session: cmd.Session, fleet: cmd.Fleet, asked: now, deadline: now.Add(c.approvalTimeout), answer: make(chan bool, 1)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, control.CloseAgentStopping
	}
	c.pending[a.session] = a
	c.sessions[a.session] = &sessionInfo{id: a.session, since: now, state: SessionWaitingOwner}
	if c.server != nil {
		c.wg.Go(func() { c.askWho(a) })
	}
	c.mu.Unlock()
	c.record(agentlog.Event{Event: eventApprovalAsked, Session: a.session,
		Detail: withPolicy("waiting for the owner until "+a.deadline.UTC().Format(time.RFC3339), policy)})
	c.log.Info("session waits for the owner's approval", "session", a.session, "until", a.deadline, "policy", policy)
	report(control.State{Kind: control.StateWaitingConsent, Session: a.session})

	t := time.NewTimer(c.approvalTimeout)
	defer t.Stop()
	var (
		ok     bool
		reason control.CloseReason
	)
	select {
	case ok = <-a.answer:
		if !ok {
			reason = control.CloseDenied
		}
	case <-t.C:
		reason = control.CloseConsentTimeout
	case <-ctx.Done():
		reason = control.CloseOnCommand
		if e, isEnd := errors.AsType[*End](context.Cause(ctx)); isEnd {
			reason = e.Reason
		}
	}
	c.mu.Lock()
	delete(c.pending, a.session)
	id := a.requestID
	if ok {
		c.sessions[a.session].state = SessionConnecting
	} else {
		delete(c.sessions, a.session)
	}
	c.mu.Unlock()
	switch {
	case ok:
		c.record(agentlog.Event{Event: eventApproved, Session: a.session, Detail: policy})
		c.closeRequest(id, "approved")
		return &Grant{}, ""
	case reason == control.CloseDenied:
		c.record(agentlog.Event{Event: eventDenied, Session: a.session})
	case reason == control.CloseConsentTimeout:
		c.record(agentlog.Event{Event: eventDenied, Session: a.session, Reason: string(control.CloseConsentTimeout), Detail: "the owner did not answer in time"})
	}
	c.log.Info("session not approved", "session", a.session, "reason", reason)
	c.closeRequest(id, string(reason))
	return nil, reason
}

// askWho puts an approval request in the server's queue; the server
// answers who asks and why, which the owner then sees.
func (c *Consent) askWho(a *approval) {
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	secs := int(time.Until(a.deadline).Round(time.Second) / time.Second)
	r, err := c.server.PostDeviceRequest(ctx, apitype.DeviceRequest{Session: a.session, ForS: max(secs, 1)})
	c.mu.Lock()
	if err != nil {
		a.serverErr = err.Error()
	} else {
		a.user, a.reason, a.requestID = r.RequestedBy, r.Reason, r.ID
	}
	_, still := c.pending[a.session]
	c.mu.Unlock()
	if err != nil {
		c.log.Warn("could not ask the server who asks for a session", "session", a.session, "err", err)
		return
	}
	c.record(agentlog.Event{Event: eventApprovalAsked, Session: a.session, Detail: fmt.Sprintf("asked by %s: %s", r.RequestedBy, orNone(r.Reason))})
	if !still { // answered while the request was on its way
		c.closeRequest(r.ID, "answered")
	}
}

// ErrNoSuchApproval: no session waits for the owner under that name.
var ErrNoSuchApproval = errors.New("agentconsent: no session waits for approval")

// Answer approves or denies a session waiting for the owner. id is the
// session's id, or an unambiguous part of it; empty means the only one
// waiting.
func (c *Consent) Answer(id string, approve bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var match []*approval
	for _, a := range c.pending {
		if id == "" || a.session == id || strings.Contains(a.session, id) {
			match = append(match, a)
		}
	}
	switch {
	case len(match) == 0 && id == "":
		return "", fmt.Errorf("%w: no session is waiting for your approval", ErrNoSuchApproval)
	case len(match) == 0:
		return "", fmt.Errorf("%w: no session waiting for approval is called %q (porthole-agent status lists them)", ErrNoSuchApproval, id)
	case len(match) > 1:
		var ids []string
		for _, a := range match {
			ids = append(ids, a.session)
		}
		slices.Sort(ids)
		return "", fmt.Errorf("%d sessions are waiting (%s): say which", len(match), strings.Join(ids, ", "))
	}
	a := match[0]
	select {
	case a.answer <- approve:
	default: // answered already
	}
	return a.session, nil
}

// CheckCode checks a support code an engineer gave for a session with
// grant g, in its window (manual mode), counting wrong ones.
func (c *Consent) CheckCode(g *Grant, session, answer string) error {
	w := g.window
	if w == nil {
		return errors.New("agentconsent: this session needs no support code")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if w.endReason != "" {
		return fmt.Errorf("the support window on %s has closed; ask its owner to run `porthole-agent request` again", c.device)
	}
	if codeMatches(answer, w.code) {
		c.record(agentlog.Event{Event: eventCodeAccepted, Session: session})
		c.log.Info("support code accepted", "session", session)
		return nil
	}
	w.wrong++
	c.record(agentlog.Event{Event: eventCodeWrong, Session: session, Detail: fmt.Sprintf("wrong code %d of %d", w.wrong, MaxWrongCodes)})
	c.log.Warn("wrong support code", "session", session, "wrong", w.wrong)
	if w.wrong >= MaxWrongCodes {
		c.closeWindowLocked(w, control.CloseWrongCodes)
		return fmt.Errorf("wrong support code, the %s in a row: %s has closed its support window; its owner must run `porthole-agent request` again",
			ordinal(MaxWrongCodes), c.device)
	}
	left := MaxWrongCodes - w.wrong
	tries := "tries"
	if left == 1 {
		tries = "try"
	}
	return fmt.Errorf("wrong support code; %d %s left before the support window closes", left, tries)
}

func ordinal(n int) string {
	switch n {
	case 5:
		return "fifth"
	}
	return fmt.Sprintf("%dth", n)
}

// SessionUp: the session's tunnel is registered at the relay.
func (c *Consent) SessionUp(session string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sessions[session]; s != nil {
		s.state = SessionOpen
	}
}

// SessionEnded: the session is over.
func (c *Consent) SessionEnded(session string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.sessions, session)
}

// connected and disconnected follow the engineers' connections (see
// Recorder).
func (c *Consent) connected(session string, who sessioncert.Claims) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sessions[session]; s != nil {
		s.user = who.User
		if s.conns == 0 {
			s.connectedSince = c.now()
		}
		s.conns++
	}
}

func (c *Consent) disconnected(session string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.sessions[session]; s != nil && s.conns > 0 {
		s.conns--
	}
}

// Recorder is the session recorder for the SSH server: it tells c who
// connects (for the owner's status) and passes everything on to next, the
// agent's own recorder (nil: none).
func (c *Consent) Recorder(next agentssh.Recorder) agentssh.Recorder {
	return recorder{c: c, next: next}
}

// recorder tells Consent who connects, and passes everything on to
// the agent's own recorder.
type recorder struct {
	c    *Consent
	next agentssh.Recorder // nil: none
}

var _ agentssh.Recorder = recorder{}

func (r recorder) Connected(session string, who sessioncert.Claims) {
	r.c.connected(session, who)
	if r.next != nil {
		r.next.Connected(session, who)
	}
}

func (r recorder) Disconnected(session, reason string) {
	r.c.disconnected(session)
	if r.next != nil {
		r.next.Disconnected(session, reason)
	}
}

func (r recorder) Process(session string, p agentssh.Process) agentssh.ProcessRecorder {
	if r.next == nil {
		return nil
	}
	return r.next.Process(session, p)
}

func (r recorder) SFTP(session string, op agentssh.SFTPOp) {
	if r.next != nil {
		r.next.SFTP(session, op)
	}
}

func (r recorder) Forward(session string, f agentssh.Forward) {
	if r.next != nil {
		r.next.Forward(session, f)
	}
}

func (r recorder) Full(session string) string {
	if r.next == nil {
		return ""
	}
	return r.next.Full(session)
}

// Status is what the owner sees (porthole-agent status, the local
// page).
type Status struct {
	Mode   Mode   `json:"mode"`
	Fleet  string `json:"fleet"`
	Device string `json:"device"`
	// Window is the open support window, if any.
	Window *WindowStatus `json:"window,omitempty"`
	// Pending are the sessions waiting for the owner's answer (approve).
	Pending []ApprovalStatus `json:"pending"`
	// Sessions are the sessions admitted and not yet ended.
	Sessions []SessionStatus `json:"sessions"`
}

// WindowStatus is a support window.
type WindowStatus struct {
	// Code is the support code, grouped (manual mode only).
	Code   string    `json:"code,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Opened time.Time `json:"opened"`
	Ends   time.Time `json:"ends"`
	// WrongCodes counts the wrong codes tried so far.
	WrongCodes int `json:"wrong_codes"`
	// RequestID is the support request in the server's queue, once there.
	RequestID string `json:"request_id,omitempty"`
	// ServerError says why the server could not be told yet.
	ServerError string `json:"server_error,omitempty"`
}

// ApprovalStatus is a session waiting for the owner.
type ApprovalStatus struct {
	Session string `json:"session"`
	// User and Reason are the engineer and their words, as the server
	// told them; empty while it has not (ServerError says why).
	User        string    `json:"user,omitempty"`
	Fleet       string    `json:"fleet"`
	Reason      string    `json:"reason,omitempty"`
	Asked       time.Time `json:"asked"`
	Deadline    time.Time `json:"deadline"`
	ServerError string    `json:"server_error,omitempty"`
}

// SessionStatus is an admitted session.
type SessionStatus struct {
	ID    string    `json:"id"`
	Since time.Time `json:"since"`
	// State is waiting_for_owner, connecting or open.
	State string `json:"state"`
	// User is the engineer, from their certificate, once they connected.
	User string `json:"user,omitempty"`
	// Connections is how many connections the engineer has open, since
	// ConnectedSince.
	Connections    int       `json:"connections"`
	ConnectedSince time.Time `json:"connected_since,omitzero"`
}

// Status is the consent as it stands.
func (c *Consent) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Status{Mode: c.mode, Fleet: c.fleet, Device: c.device, Pending: []ApprovalStatus{}, Sessions: []SessionStatus{}}
	if c.window != nil {
		ws := c.windowStatusLocked(c.window)
		st.Window = &ws
	}
	for _, a := range c.pending {
		st.Pending = append(st.Pending, ApprovalStatus{Session: a.session, User: a.user, Fleet: a.fleet, Reason: a.reason,
			Asked: a.asked, Deadline: a.deadline, ServerError: a.serverErr})
	}
	slices.SortFunc(st.Pending, func(a, b ApprovalStatus) int { return a.Asked.Compare(b.Asked) })
	for _, s := range c.sessions {
		st.Sessions = append(st.Sessions, SessionStatus{ID: s.id, Since: s.since, State: s.state, User: s.user,
			Connections: s.conns, ConnectedSince: s.connectedSince})
	}
	slices.SortFunc(st.Sessions, func(a, b SessionStatus) int { return a.Since.Compare(b.Since) })
	return st
}

func (c *Consent) windowStatusLocked(w *window) WindowStatus {
	ws := WindowStatus{Reason: w.reason, Opened: w.opened, Ends: w.ends, WrongCodes: w.wrong,
		RequestID: w.requestID, ServerError: w.serverErr}
	if w.code != "" {
		ws.Code = formatCode(w.code)
	}
	return ws
}
