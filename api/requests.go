package api

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/fleetpolicy"
	"github.com/porthole/porthole/session"
	"github.com/porthole/porthole/store"
)

// The support queue. Devices put requests in it with their own credential
// (POST /api/v1/device/requests): a support request when the owner asks
// for help, with how long the owner's window lasts, or an approval request
// when an engineer's session waits for the owner of a device in approve
// mode. The owner's support code never reaches the server. Engineers list
// the queue (GET /api/v1/requests), claim a request so that others know it
// is taken, and close it; devices close theirs when the owner ends the
// window, the owner answers, or five wrong codes closed the window.

// Bounds of a device's request.
const (
	maxSupportWindow    = 24 * time.Hour   // the longest an owner's window may last
	maxApprovalWait     = 15 * time.Minute // the longest an owner may take to answer
	maxRequestReasonLen = 500
)

// deviceCloseReason is what a device may say when it closes a request.
var deviceCloseReason = regexp.MustCompile(`^[a-z_]{1,32}$`)

// apiRequest converts a request as it stands at now: one past its expiry
// is reported closed, as expired.
func apiRequest(r *store.SupportRequest, now time.Time) apitype.SupportRequest {
	out := apitype.SupportRequest{ID: r.ID, Fleet: r.FleetName, Device: r.DeviceName, DeviceID: r.DeviceID,
		Kind: string(r.Kind), Session: r.SessionID, Reason: r.Reason, RequestedBy: r.RequestedBy,
		State: string(r.State), ClaimedBy: r.ClaimedEmail, CloseReason: r.CloseReason, ClosedBy: r.ClosedBy,
		CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, ClaimedAt: r.ClaimedAt, ClosedAt: r.ClosedAt,
		Sessions: r.SessionIDs}
	if out.Sessions == nil {
		out.Sessions = []string{}
	}
	if r.State != store.RequestClosed && !now.Before(r.ExpiresAt) {
		out.State, out.CloseReason, out.ClosedAt = apitype.RequestClosed, apitype.RequestExpired, r.ExpiresAt
	}
	return out
}

// supportRequest finds a request and checks the caller's role in its
// fleet.
func (c *call) supportRequest(id string) (*store.SupportRequest, error) {
	missing := notFound("there is no support request %q in your fleets", id)
	r, err := c.s.store.GetSupportRequest(c.ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, missing
	} else if err != nil {
		return nil, fmt.Errorf("looking up support request %q: %w", id, err)
	}
	if _, err := c.authorize(&store.Fleet{ID: r.FleetID, Name: r.FleetName}, missing); err != nil {
		return nil, err
	}
	return r, nil
}

// listRequests is GET /api/v1/requests: the queue of the caller's fleets,
// newest first: requests neither closed nor expired, or with all=true
// every one, narrowed by fleet, device and session.
func (s *Server) listRequests(c *call, _ *none) ([]apitype.SupportRequest, error) {
	q := c.r.URL.Query()
	now := s.now()
	filter := store.SupportRequestFilter{PendingAt: now, SessionID: q.Get("session"), Limit: 100}
	switch q.Get("all") {
	case "", "false":
	case "true":
		filter.PendingAt = time.Time{}
	default:
		return nil, badRequest("all=%q; use true or false", q.Get("all"))
	}
	var err error
	if filter.FleetIDs, filter.DeviceID, err = c.listScope(); err != nil {
		return nil, err
	}
	rs, err := s.store.ListSupportRequests(c.ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("listing support requests: %w", err)
	}
	return convertAll(rs, func(r *store.SupportRequest) apitype.SupportRequest { return apiRequest(r, now) }), nil
}

// getRequest is GET /api/v1/requests/{id}.
func (s *Server) getRequest(c *call, _ *none) (apitype.SupportRequest, error) {
	r, err := c.supportRequest(c.r.PathValue("id"))
	if err != nil {
		return apitype.SupportRequest{}, err
	}
	return apiRequest(r, s.now()), nil
}

// claimRequest is POST /api/v1/requests/{id}/claim: the caller takes the
// request, so other engineers know it is being handled. Claiming one's own
// claim again answers it; someone else's, a closed or an expired request is
// a conflict that says which.
func (s *Server) claimRequest(c *call, _ *none) (apitype.SupportRequest, error) {
	r, err := c.supportRequest(c.r.PathValue("id"))
	if err != nil {
		return apitype.SupportRequest{}, err
	}
	now := s.now()
	claimed := audit.Event{Kind: audit.SupportRequestClaimed, Detail: map[string]string{"request": r.ID}}
	got, changed, err := s.store.ClaimSupportRequest(c.withAudit(claimed).ctx, r.ID, c.user.ID, c.user.Email, now)
	if err != nil {
		return apitype.SupportRequest{}, fmt.Errorf("claiming support request %s: %w", r.ID, err)
	}
	if !changed {
		switch {
		case got.State == store.RequestClaimed && got.ClaimedBy == c.user.ID:
			return apiRequest(got, now), nil
		case got.State == store.RequestClaimed:
			return apitype.SupportRequest{}, conflict("support request %s is already claimed by %s", r.ID, got.ClaimedEmail)
		case got.State == store.RequestClosed:
			return apitype.SupportRequest{}, conflict("support request %s is closed (%s)", r.ID, got.CloseReason)
		default:
			return apitype.SupportRequest{}, conflict("support request %s expired at %s", r.ID, got.ExpiresAt.Format(time.RFC3339))
		}
	}
	s.logger.Info("support request claimed", "request_id", requestID(c.ctx), "by", c.user.Email, "support_request", r.ID,
		"fleet", r.FleetName, "device", r.DeviceName)
	return apiRequest(got, now), nil
}

// closeRequest is POST /api/v1/requests/{id}/close: an engineer is done
// with a request. Closing a closed request answers it as it is. Closing a
// four-eyes request that waits refuses its session (denyRequest).
func (s *Server) closeRequest(c *call, _ *none) (apitype.SupportRequest, error) {
	r, err := c.supportRequest(c.r.PathValue("id"))
	if err != nil {
		return apitype.SupportRequest{}, err
	}
	if r.Kind == store.RequestFourEyes && r.State != store.RequestClosed {
		return s.answerFourEyes(c, r, false)
	}
	closed := audit.Event{Kind: audit.SupportRequestClosed, Detail: map[string]string{"request": r.ID, "reason": "closed"}}
	got, changed, err := s.store.CloseSupportRequest(c.withAudit(closed).ctx, r.ID, "closed", c.user.Email, s.now())
	if err != nil {
		return apitype.SupportRequest{}, fmt.Errorf("closing support request %s: %w", r.ID, err)
	}
	if changed {
		s.logger.Info("support request closed", "request_id", requestID(c.ctx), "by", c.user.Email, "support_request", r.ID,
			"fleet", r.FleetName, "device", r.DeviceName)
	}
	return apiRequest(got, s.now()), nil
}

// deviceRequest is POST /api/v1/device/requests: the calling device puts a
// request in its fleet's queue. A support request replaces the device's
// earlier ones still pending (the owner has one window at a time); an
// approval request for a session that has one already answers that one,
// so a device may safely retry.
func (s *Server) deviceRequest(c *call, req *apitype.DeviceRequest) (apitype.SupportRequest, error) {
	now := s.now()
	r := &store.SupportRequest{DeviceID: c.dev.ID, Kind: store.RequestSupport, Reason: req.Reason, CreatedAt: now}
	limit := maxSupportWindow
	if req.Session != "" {
		ses, err := s.store.GetSession(c.ctx, req.Session)
		if errors.Is(err, store.ErrNotFound) || err == nil && ses.DeviceID != c.dev.ID {
			return apitype.SupportRequest{}, notFound("there is no session %q on this device", req.Session)
		} else if err != nil {
			return apitype.SupportRequest{}, fmt.Errorf("looking up session %q: %w", req.Session, err)
		}
		if !ses.Open() {
			return apitype.SupportRequest{}, conflict("session %s is closed (%s)", ses.ID, ses.CloseReason)
		}
		if req.Reason != "" {
			return apitype.SupportRequest{}, badRequest("an approval request takes the engineer's reason from the session; send no reason")
		}
		r.Kind, r.SessionID, r.Reason, r.RequestedBy = store.RequestApproval, ses.ID, ses.Reason, ses.UserEmail
		limit = maxApprovalWait
	}
	if req.ForS <= 0 || time.Duration(req.ForS)*time.Second > limit {
		return apitype.SupportRequest{}, badRequest("for_s must be 1 to %d seconds", int(limit/time.Second))
	}
	if len(req.Reason) > maxRequestReasonLen {
		return apitype.SupportRequest{}, badRequest("the reason is %d bytes; keep it under %d", len(req.Reason), maxRequestReasonLen)
	}
	r.ExpiresAt = now.Add(time.Duration(req.ForS) * time.Second)
	if r.Kind == store.RequestSupport {
		old, err := s.store.ListSupportRequests(c.ctx, store.SupportRequestFilter{DeviceID: c.dev.ID, PendingAt: now})
		if err != nil {
			return apitype.SupportRequest{}, fmt.Errorf("listing the device's requests: %w", err)
		}
		for _, o := range old {
			if o.Kind != store.RequestSupport {
				continue
			}
			if _, _, err := s.store.CloseSupportRequest(c.ctx, o.ID, "replaced", "device", now); err != nil {
				return apitype.SupportRequest{}, fmt.Errorf("closing the device's earlier request %s: %w", o.ID, err)
			}
		}
	}
	// Only support requests are the owner's act; an approval request is
	// the device asking its owner, recorded when they answer.
	ctx := c.ctx
	if r.Kind == store.RequestSupport {
		ctx = c.withAudit(audit.Event{Kind: audit.SupportRequested, Device: c.dev.Name, Fleet: c.dev.FleetName,
			Detail: map[string]string{"reason": r.Reason, "until": r.ExpiresAt.UTC().Format(time.RFC3339)}}).ctx
	}
	err := s.store.CreateSupportRequest(ctx, r)
	if errors.Is(err, store.ErrConflict) && r.Kind == store.RequestApproval {
		rs, lerr := s.store.ListSupportRequests(c.ctx, store.SupportRequestFilter{SessionID: r.SessionID, Kind: store.RequestApproval, Limit: 1})
		if lerr != nil || len(rs) != 1 {
			return apitype.SupportRequest{}, fmt.Errorf("finding session %s's approval request: %w (%w)", r.SessionID, err, lerr)
		}
		return apiRequest(rs[0], now), nil
	}
	if err != nil {
		return apitype.SupportRequest{}, fmt.Errorf("recording a support request: %w", err)
	}
	s.logger.Info("support request", "request_id", requestID(c.ctx), "support_request", r.ID, "kind", r.Kind,
		"fleet", c.dev.FleetName, "device", c.dev.Name, "session", r.SessionID, "expires_at", r.ExpiresAt)
	return apiRequest(r, now), nil
}

// deviceCloseRequest is POST /api/v1/device/requests/{id}/close: the
// calling device closes one of its own requests, saying why.
func (s *Server) deviceCloseRequest(c *call, req *apitype.CloseRequest) (apitype.SupportRequest, error) {
	id := c.r.PathValue("id")
	r, err := s.store.GetSupportRequest(c.ctx, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && r.DeviceID != c.dev.ID {
		return apitype.SupportRequest{}, notFound("there is no support request %q of this device", id)
	} else if err != nil {
		return apitype.SupportRequest{}, fmt.Errorf("looking up support request %q: %w", id, err)
	}
	if !deviceCloseReason.MatchString(req.Reason) {
		return apitype.SupportRequest{}, badRequest("reason %q must be 1 to 32 of a-z and _, such as revoked", req.Reason)
	}
	closed := audit.Event{Kind: audit.SupportRequestClosed, Detail: map[string]string{"request": r.ID, "reason": req.Reason}}
	got, changed, err := s.store.CloseSupportRequest(c.withAudit(closed).ctx, r.ID, req.Reason, "device", s.now())
	if err != nil {
		return apitype.SupportRequest{}, fmt.Errorf("closing support request %s: %w", r.ID, err)
	}
	if changed {
		s.logger.Info("support request closed by its device", "request_id", requestID(c.ctx), "support_request", r.ID,
			"fleet", c.dev.FleetName, "device", c.dev.Name, "reason", req.Reason)
	}
	return apiRequest(got, s.now()), nil
}

// approveRequest is POST /api/v1/requests/{id}/approve: a second engineer
// of the fleet approves the session a four-eyes request holds, which then
// goes to its device with both engineers' names. The engineer who asked
// cannot: the fleet's rule says so, in the audit log too.
func (s *Server) approveRequest(c *call, _ *none) (apitype.SupportRequest, error) {
	r, err := c.supportRequest(c.r.PathValue("id"))
	if err != nil {
		return apitype.SupportRequest{}, err
	}
	return s.answerFourEyes(c, r, true)
}

// denyRequest is POST /api/v1/requests/{id}/deny: a second engineer
// refuses the session a four-eyes request holds (its own engineer may
// withdraw it so too); it closes as four_eyes_denied.
func (s *Server) denyRequest(c *call, _ *none) (apitype.SupportRequest, error) {
	r, err := c.supportRequest(c.r.PathValue("id"))
	if err != nil {
		return apitype.SupportRequest{}, err
	}
	return s.answerFourEyes(c, r, false)
}

// answerFourEyes approves or refuses the session of four-eyes request r.
func (s *Server) answerFourEyes(c *call, r *store.SupportRequest, approve bool) (apitype.SupportRequest, error) {
	verb := map[bool]string{true: "approve", false: "deny"}[approve]
	if r.Kind != store.RequestFourEyes {
		what := "a device's owner asking for help: claim it, or close it"
		if r.Kind == store.RequestApproval {
			what = "a session waiting for the owner of " + r.DeviceName + ", who answers on the device (porthole-agent approve)"
		}
		return apitype.SupportRequest{}, conflict("request %s is not one for a second engineer to %s: it is %s", r.ID, verb, what)
	}
	if s.sessions == nil {
		return apitype.SupportRequest{}, errorf(http.StatusServiceUnavailable, apitype.CodeUnavailable,
			"this server does not open sessions (it runs no control channel)")
	}
	var (
		ses *store.Session
		err error
	)
	if approve {
		pol, perr := s.store.GetFleetPolicy(c.ctx, r.FleetID)
		if perr != nil {
			return apitype.SupportRequest{}, fmt.Errorf("reading the policy of fleet %s: %w", r.FleetName, perr)
		}
		// The approver brings the second pair of eyes: the fleet's
		// reauth rule holds for them as for the engineer who asked. Not
		// asked of one who cannot approve anyway (the session's own
		// engineer, or it no longer waits): Approve says why in its words,
		// and no code is spent on a refusal.
		// (A session that no longer waits never waits again, and its
		// engineer stays its engineer: Approve refuses both.)
		cur, gerr := s.sessions.Get(c.ctx, r.SessionID)
		if gerr != nil {
			return apitype.SupportRequest{}, fmt.Errorf("reading session %s: %w", r.SessionID, gerr)
		}
		if cur.WaitsForApproval() && cur.UserID != c.user.ID && !strings.EqualFold(cur.UserEmail, c.user.Email) {
			if err := c.checkReauth(pol, "approve a session", audit.Event{FleetID: r.FleetID, Fleet: r.FleetName, Device: r.DeviceName,
				DeviceID: r.DeviceID, Session: r.SessionID, Detail: map[string]string{"request": r.ID, "requested_by": r.RequestedBy}}); err != nil {
				return apitype.SupportRequest{}, err
			}
		}
		ses, err = s.sessions.Approve(c.ctx, r.SessionID, c.user, pol)
		if rf, ok := errors.AsType[*fleetpolicy.Refusal](err); ok {
			return apitype.SupportRequest{}, c.refusedByPolicy(r.FleetID, rf, audit.Event{Device: r.DeviceName, DeviceID: r.DeviceID,
				Session: r.SessionID, Detail: map[string]string{"request": r.ID, "requested_by": r.RequestedBy}})
		}
	} else {
		ses, err = s.sessions.Deny(c.ctx, r.SessionID, c.user)
	}
	switch {
	case errors.Is(err, session.ErrNotWaiting):
		why := string(ses.State)
		switch {
		case ses.State == store.SessionClosed:
			why = "closed (" + strings.ReplaceAll(ses.CloseReason, "_", " ") + ")"
		case ses.ApprovedEmail != "":
			why = "approved by " + ses.ApprovedEmail
		}
		return apitype.SupportRequest{}, conflict("session %s no longer waits for a second engineer: it is %s", ses.ID, why)
	case errors.Is(err, store.ErrMayNotApprove):
		return apitype.SupportRequest{}, forbidden("you may no longer approve sessions of fleet %s: your role in it (or your account) was taken away a moment ago", r.FleetName)
	case errors.Is(err, session.ErrControlUnavailable):
		return apitype.SupportRequest{}, errorf(http.StatusServiceUnavailable, apitype.CodeUnavailable,
			"approved, but could not reach %s over the control channel, so the session closed; %s must ask again", r.DeviceName, r.RequestedBy)
	case err != nil:
		return apitype.SupportRequest{}, fmt.Errorf("%s session %s: %w", verb, r.SessionID, err)
	}
	s.logger.Info("four-eyes request answered", "request_id", requestID(c.ctx), "by", c.user.Email, "support_request", r.ID,
		"session", ses.ID, "approved", approve, "fleet", r.FleetName, "device", r.DeviceName, "requested_by", r.RequestedBy)
	got, err := s.store.GetSupportRequest(c.ctx, r.ID)
	if err != nil {
		return apitype.SupportRequest{}, fmt.Errorf("reading support request %s: %w", r.ID, err)
	}
	return apiRequest(got, s.now()), nil
}
