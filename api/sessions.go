package api

import (
	"cmp"
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/ca"
	"github.com/porthole/porthole/control"
	"github.com/porthole/porthole/fleetpolicy"
	"github.com/porthole/porthole/session"
	"github.com/porthole/porthole/store"
)

// Long-poll bounds of GET /api/v1/sessions/{id}?wait=STATE.
const (
	defaultWait = 25 * time.Second
	maxWait     = 60 * time.Second
)

// createSession is POST /api/v1/devices/{id}/sessions: the device must be
// on the control channel; the session is recorded, the engineer's key
// certified for it, and the device asked to connect.
func (s *Server) createSession(c *call, req *apitype.CreateSessionRequest) (apitype.CreateSessionResponse, error) {
	if req.Device != "" || req.Fleet != "" {
		return apitype.CreateSessionResponse{}, badRequest("this route names the device by the ID in its path: leave out device and fleet (POST /api/v1/sessions takes them)")
	}
	d, err := c.device(c.r.PathValue("id"))
	if err != nil {
		return apitype.CreateSessionResponse{}, err
	}
	return s.openSession(c, d, req)
}

// createSessionByName is POST /api/v1/sessions: createSession for the
// device req names, in one request where looking it up first would take
// two. The caller's role in the device's fleet is checked as for the
// device's ID.
func (s *Server) createSessionByName(c *call, req *apitype.CreateSessionRequest) (apitype.CreateSessionResponse, error) {
	d, err := c.deviceNamed(req.Fleet, req.Device)
	if err != nil {
		return apitype.CreateSessionResponse{}, err
	}
	return s.openSession(c, d, req)
}

// openSession opens a session on d, whose fleet the caller may open
// sessions in, for req.
func (s *Server) openSession(c *call, d *store.Device, req *apitype.CreateSessionRequest) (apitype.CreateSessionResponse, error) {
	pub, err := engineerKey(req.PublicKey)
	if err != nil {
		return apitype.CreateSessionResponse{}, err
	}
	for _, p := range req.Ports {
		if p < 1 || p > 65535 {
			return apitype.CreateSessionResponse{}, badRequest("port %d is not a port (1-65535)", p)
		}
	}
	if len(req.Ports) > 32 {
		return apitype.CreateSessionResponse{}, badRequest("ask for at most 32 ports, not %d", len(req.Ports))
	}
	if len(req.Reason) > 500 {
		return apitype.CreateSessionResponse{}, badRequest("the reason is %d bytes; keep it under 500", len(req.Reason))
	}
	if req.IdleTimeoutS < 0 || req.MaxDurationS < 0 {
		return apitype.CreateSessionResponse{}, badRequest("idle_timeout_s and max_duration_s cannot be negative")
	}
	if err := deviceOffline(d, s.now()); err != nil {
		return apitype.CreateSessionResponse{}, err
	}
	if s.sessions == nil {
		return apitype.CreateSessionResponse{}, errorf(http.StatusServiceUnavailable, apitype.CodeUnavailable,
			"this server does not open sessions (it runs no control channel)")
	}
	pol, err := s.store.GetFleetPolicy(c.ctx, d.FleetID)
	if err != nil {
		return apitype.CreateSessionResponse{}, fmt.Errorf("reading the policy of fleet %s: %w", d.FleetName, err)
	}
	if err := c.checkReauth(pol, "open a session", audit.Event{FleetID: d.FleetID, Fleet: d.FleetName, Device: d.Name, DeviceID: d.ID,
		Detail: map[string]string{"ports": fleetpolicy.List(req.Ports)}}); err != nil {
		return apitype.CreateSessionResponse{}, err
	}
	opened, err := s.sessions.Open(c.ctx, session.Request{
		Device: d, User: c.user, PublicKey: pub, Ports: req.Ports, Reason: req.Reason,
		IdleTimeout: time.Duration(req.IdleTimeoutS) * time.Second,
		MaxDuration: time.Duration(req.MaxDurationS) * time.Second,
		Policy:      pol,
	})
	if err != nil {
		if r, ok := errors.AsType[*fleetpolicy.Refusal](err); ok {
			return apitype.CreateSessionResponse{}, c.refusedByPolicy(d.FleetID, r, audit.Event{Device: d.Name, DeviceID: d.ID,
				Detail: map[string]string{"ports": fleetpolicy.List(req.Ports), "policy_version": strconv.FormatInt(pol.Version, 10)}})
		}
		if errors.Is(err, session.ErrNoRelay) {
			return apitype.CreateSessionResponse{}, errorf(http.StatusServiceUnavailable, apitype.CodeUnavailable,
				"no relay is running to carry a session to %s (no server node with the relay role has been heard from for a few seconds); start one, or try again in a moment", d.Name)
		}
		if errors.Is(err, session.ErrControlUnavailable) {
			return apitype.CreateSessionResponse{}, errorf(http.StatusServiceUnavailable, apitype.CodeUnavailable,
				"could not reach %s over the control channel; try again in a moment", d.Name)
		}
		return apitype.CreateSessionResponse{}, fmt.Errorf("opening a session on %s: %w", d.ID, err)
	}
	// An administrator may have reset or deleted the caller, or an owner
	// taken their role, while the session was being opened: the change
	// then closed every session it found, but not this one, recorded
	// after. Checked again now that it is recorded, it closes as theirs
	// would have.
	if err := s.accessKept(c, d.FleetID, d.FleetName); err != nil {
		if _, cerr := s.sessions.CloseSession(c.ctx, opened.Session.ID, control.CloseUserRemoved); cerr != nil {
			return apitype.CreateSessionResponse{}, fmt.Errorf("closing session %s, opened as its engineer lost their access: %w", opened.Session.ID, cerr)
		}
		return apitype.CreateSessionResponse{}, err
	}
	s.logger.Info("session requested", "request_id", requestID(c.ctx), "by", c.user.Email, "session", opened.Session.ID,
		"fleet", d.FleetName, "device", d.Name, "four_eyes", opened.FourEyes != nil)
	var fourEyes string
	if opened.FourEyes != nil {
		fourEyes = opened.FourEyes.ID
	}
	return apitype.CreateSessionResponse{
		FourEyesRequest: fourEyes,
		Session:         apiSession(opened.Session),
		Certificate:     strings.TrimSpace(string(ssh.MarshalAuthorizedKey(opened.Certificate))),
		RelayAddr:       cmp.Or(opened.Session.RelaySSHAddr, s.relayAddr),
		Relay2Addr:      opened.Session.RelayAddr,
		HostCA:          s.keys.HostCAPublicKey(),
		HostPrincipals:  ca.HostPrincipals(d.FleetName, d.Name),
	}, nil
}

// engineerKey parses the key an engineer asks to certify: a plain (not
// certified) ed25519, ECDSA or RSA key of at least 2048 bits.
func engineerKey(line string) (ssh.PublicKey, error) {
	if strings.TrimSpace(line) == "" {
		return nil, badRequest("public_key is required: the SSH public key to certify for this session")
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, badRequest("public_key is not an SSH public key in authorized_keys format")
	}
	switch pub.Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
	case ssh.KeyAlgoRSA:
		if k, ok := pub.(ssh.CryptoPublicKey).CryptoPublicKey().(*rsa.PublicKey); !ok || k.N.BitLen() < 2048 {
			return nil, badRequest("public_key is an RSA key under 2048 bits; use ed25519")
		}
	default:
		return nil, badRequest("public_key is %s; use an ed25519, ECDSA or RSA key", pub.Type())
	}
	return pub, nil
}

// session finds a session and checks the caller's role in its fleet.
func (c *call) session(id string) (*store.Session, error) {
	missing := notFound("there is no session %q in your fleets", id)
	if c.s.sessions == nil {
		return nil, missing
	}
	ses, err := c.s.sessions.Get(c.ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, missing
	} else if err != nil {
		return nil, fmt.Errorf("looking up session %q: %w", id, err)
	}
	if _, err := c.authorize(&store.Fleet{ID: ses.FleetID, Name: ses.FleetName}, missing); err != nil {
		return nil, err
	}
	return ses, nil
}

var sessionStates = []string{apitype.SessionRequested, apitype.SessionWaitingConsent, apitype.SessionConnecting,
	apitype.SessionActive, apitype.SessionClosed}

// getSession is GET /api/v1/sessions/{id}[?wait=STATE[&timeout=D]]: with
// wait, the answer comes once the session has reached STATE or gone past
// it (closed is past everything), or after timeout (default 25 s, at most
// 60 s) with the session as it is then, so clients need not spin.
func (s *Server) getSession(c *call, _ *none) (apitype.Session, error) {
	ses, err := c.session(c.r.PathValue("id"))
	if err != nil {
		return apitype.Session{}, err
	}
	q := c.r.URL.Query()
	want := q.Get("wait")
	if want == "" {
		return apiSession(ses), nil
	}
	if !slices.Contains(sessionStates, want) {
		return apitype.Session{}, badRequest("wait=%q is not a session state; use one of %s", want, strings.Join(sessionStates, ", "))
	}
	wait := defaultWait
	if t := q.Get("timeout"); t != "" {
		if wait, err = time.ParseDuration(t); err != nil || wait <= 0 {
			return apitype.Session{}, badRequest("timeout=%q is not a duration such as 25s", t)
		}
		wait = min(wait, maxWait)
	}
	ctx, cancel := context.WithTimeout(c.ctx, wait)
	defer cancel()
	ses, err = s.sessions.Wait(ctx, ses.ID, store.SessionState(want))
	if err != nil {
		return apitype.Session{}, fmt.Errorf("waiting on session %s: %w", c.r.PathValue("id"), err)
	}
	return apiSession(ses), nil
}

// closeSession is DELETE /api/v1/sessions/{id}: the session is closed, the
// device told, the relay's splice cut. The reason recorded is the device's
// if it had ended the session first (see session.Manager.EngineerClose),
// engineer_closed otherwise. Closing a closed session answers it as it is.
func (s *Server) closeSession(c *call, _ *none) (apitype.Session, error) {
	ses, err := c.session(c.r.PathValue("id"))
	if err != nil {
		return apitype.Session{}, err
	}
	ses, err = s.sessions.EngineerClose(c.ctx, ses.ID)
	if err != nil {
		return apitype.Session{}, fmt.Errorf("closing session %s: %w", c.r.PathValue("id"), err)
	}
	return apiSession(ses), nil
}

// listSessions is GET /api/v1/sessions: sessions in the caller's fleets,
// newest first, narrowed by fleet, device and whether they are open.
func (s *Server) listSessions(c *call, _ *none) ([]apitype.Session, error) {
	q := c.r.URL.Query()
	filter := store.SessionFilter{OpenOnly: q.Get("open") == "true", Limit: 100}
	if v := q.Get("open"); v != "" && v != "true" && v != "false" {
		return nil, badRequest("open=%q; use true or false", v)
	}
	var err error
	if filter.FleetIDs, filter.DeviceID, err = c.listScope(); err != nil {
		return nil, err
	}
	if s.sessions == nil {
		return []apitype.Session{}, nil
	}
	ss, err := s.store.ListSessions(c.ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("listing sessions: %w", err)
	}
	return convertAll(ss, apiSession), nil
}

// listScope reads a list's fleet= and device= (a device name, which
// needs its fleet): the fleets the list may show (nil: all, for
// administrators) and the device's ID, if one was named.
func (c *call) listScope() (fleetIDs []string, deviceID string, err error) {
	q := c.r.URL.Query()
	if fleetIDs, err = c.fleetScope(q.Get("fleet")); err != nil {
		return nil, "", err
	}
	name := q.Get("device")
	if name == "" {
		return fleetIDs, "", nil
	}
	if q.Get("fleet") == "" {
		return nil, "", badRequest("device= needs fleet= too: device names are unique within a fleet")
	}
	d, err := c.s.store.GetDeviceByName(c.ctx, fleetIDs[0], name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", notFound("no device %s in fleet %s", name, q.Get("fleet"))
	} else if err != nil {
		return nil, "", fmt.Errorf("looking up device %s: %w", name, err)
	}
	return fleetIDs, d.ID, nil
}

// fleetScope is the fleets a list may show: the one named (if the caller
// has a role in it), or every fleet of the caller's (nil: every fleet, for
// administrators).
func (c *call) fleetScope(name string) ([]string, error) {
	if name != "" {
		f, _, err := c.fleet(name)
		if err != nil {
			return nil, err
		}
		return []string{f.ID}, nil
	}
	if c.user.Admin {
		return nil, nil
	}
	ms, err := c.s.store.Memberships(c.ctx, c.user.ID)
	if err != nil {
		return nil, fmt.Errorf("listing the caller's roles: %w", err)
	}
	ids := make([]string, 0, len(ms)) // empty, not nil: no fleets, nothing
	for _, m := range ms {
		ids = append(ids, m.FleetID)
	}
	return ids, nil
}

func apiSession(s *store.Session) apitype.Session {
	return apitype.Session{ID: s.ID, Fleet: s.FleetName, Device: s.DeviceName, DeviceID: s.DeviceID, User: s.UserEmail,
		State: string(s.State), CloseReason: s.CloseReason, Reason: s.Reason, Ports: s.Ports,
		IdleTimeoutS: int(s.IdleTimeout / time.Second), MaxDurationS: int(s.MaxDuration / time.Second),
		CreatedAt: s.CreatedAt, ActiveAt: s.ActiveAt, ClosedAt: s.ClosedAt, LastActivity: s.LastActivity,
		FourEyes: s.FourEyes, ApprovedBy: s.ApprovedEmail}
}

// accessKept checks again, against the store, that the caller's login
// still holds and still lets them open sessions in fleet fleetID: an
// answer in words if not.
func (s *Server) accessKept(c *call, fleetID, fleetName string) error {
	tok, err := s.store.TokenByHash(c.ctx, c.token.Hash, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return unauthenticated("your login ended (reset, deleted or revoked) while the session opened; it is closed")
	} else if err != nil {
		return fmt.Errorf("checking the caller's login again: %w", err)
	}
	u, err := s.store.GetUser(c.ctx, tok.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return unauthenticated("your account was deleted while the session opened; it is closed")
	} else if err != nil {
		return fmt.Errorf("looking up the caller again: %w", err)
	}
	again := *c
	again.user = u
	role, err := again.roleIn(fleetID)
	if err != nil {
		return err
	}
	if rank(role) < rank(store.RoleOperator) {
		return forbidden("your role in fleet %s was taken away while the session opened; it is closed", fleetName)
	}
	return nil
}
