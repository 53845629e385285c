package api

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/store"
)

// The API records its events in two ways. A handler that changes
// something passes its event with the change (store.WithAudit), so both
// are kept or neither. Events of no change (a refused login, a denied
// request) go through record, which never turns the answer into an
// error: a denial stays a denial if the log cannot be written, and the
// failure is logged.
//
// Attempts refused by the rate limits are not recorded one by one: their
// number is the attacker's to choose. The failures that led to the limit
// are recorded, and the limit's refusals are counted in the metrics and
// the log.

// Bounds of GET /api/v1/audit.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// actor is the caller, as the audit log names them.
func (c *call) actor() audit.Actor {
	if c.user != nil {
		return audit.User(c.user.ID, c.user.Email)
	}
	return audit.ActorFrom(c.ctx)
}

// record appends events that go with no change; see above. A caller that
// hangs up at once (say, after a wrong password) must not take its event
// with it, so the request's cancellation does not reach the append.
func (s *Server) record(c *call, evs ...audit.Event) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 10*time.Second)
	defer cancel()
	if err := s.store.AppendAudit(ctx, evs...); err != nil {
		s.logger.Error("could not record audit events", "request_id", requestID(c.ctx), "kind", evs[0].Kind, "err", err)
	}
}

// withAudit returns the call's context carrying ev, for the write that
// makes the change ev records. The caller is the actor unless ev names
// one; the client's address is added to the detail.
func (c *call) withAudit(ev audit.Event) *call {
	if ev.Actor.Kind == "" {
		ev.Actor = c.actor()
	}
	if ev.Detail == nil {
		ev.Detail = map[string]string{}
	}
	ev.Detail["remote"] = clientAddr(c.r)
	cc := *c
	cc.ctx = store.WithAudit(c.ctx, ev)
	return &cc
}

// listAudit is GET /api/v1/audit: the events of the caller's fleets
// (administrators: all, fleetless ones such as logins included), oldest
// first; without since or after, the latest ones.
func (s *Server) listAudit(c *call, _ *none) ([]apitype.AuditEvent, error) {
	q := c.r.URL.Query()
	fleets, err := c.fleetScope(q.Get("fleet"))
	if err != nil {
		return nil, err
	}
	device := q.Get("device") // a deleted device's events too, so no lookup
	if device != "" {
		if q.Get("fleet") == "" {
			return nil, badRequest("device= needs fleet= too: device names are unique within a fleet")
		}
		if err := checkName("device name", device); err != nil {
			return nil, err
		}
	}
	f, err := parseAuditQuery(q)
	if err != nil {
		return nil, err
	}
	f.FleetIDs, f.Device, f.Session = fleets, device, q.Get("session")
	evs, err := s.store.ListAudit(c.ctx, f)
	if err != nil {
		return nil, fmt.Errorf("listing audit events: %w", err)
	}
	return convertAll(evs, apiAuditEvent), nil
}

// parseAuditQuery reads the window of an audit listing from q: since (an
// RFC 3339 time), after and before (sequence numbers) and limit (1 to
// maxAuditLimit, defaultAuditLimit when absent). Without since or after,
// the filter asks for the latest events (before before, if given: the
// page of older ones). Which events is the caller's to add.
func parseAuditQuery(q url.Values) (store.AuditFilter, error) {
	f := store.AuditFilter{Limit: defaultAuditLimit}
	var err error
	if v := q.Get("since"); v != "" {
		if f.Since, err = time.Parse(time.RFC3339, v); err != nil {
			return store.AuditFilter{}, badRequest("since=%q is not an RFC 3339 time such as 2026-11-22T10:30:00Z", v)
		}
	}
	if v := q.Get("after"); v != "" {
		if f.After, err = strconv.ParseInt(v, 10, 64); err != nil || f.After < 0 {
			return store.AuditFilter{}, badRequest("after=%q is not an event's sequence number", v)
		}
	}
	if v := q.Get("before"); v != "" {
		if f.Before, err = strconv.ParseInt(v, 10, 64); err != nil || f.Before < 1 {
			return store.AuditFilter{}, badRequest("before=%q is not an event's sequence number", v)
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > maxAuditLimit {
			return store.AuditFilter{}, badRequest("limit=%q: want a number from 1 to %d", v, maxAuditLimit)
		}
	}
	f.Latest = f.Since.IsZero() && f.After == 0
	return f, nil
}

// verifyAudit is GET /api/v1/audit/verify[?anchor=SEQ:HASH]: it walks the
// whole chain (see audit.Verify). A broken chain is a 200 answer with ok
// false: the check worked, and found tampering.
func (s *Server) verifyAudit(c *call, _ *none) (apitype.AuditVerification, error) {
	var anchor audit.Head
	if v := c.r.URL.Query().Get("anchor"); v != "" {
		var err error
		if anchor, err = audit.ParseHead(v); err != nil {
			return apitype.AuditVerification{}, badRequest("anchor: %s", err)
		}
	}
	r, err := audit.Verify(c.ctx, s.store, anchor)
	if err != nil {
		return apitype.AuditVerification{}, fmt.Errorf("verifying the audit log: %w", err)
	}
	out := apitype.AuditVerification{OK: r.OK(), Count: r.Count, Head: r.Head.String()}
	if p := r.Problem; p != nil {
		out.Problem = &apitype.AuditProblem{Kind: string(p.Kind), Seq: p.Seq, Message: p.Message}
		s.logger.Error("the audit log's chain is broken", "request_id", requestID(c.ctx), "problem", p.Kind, "seq", p.Seq, "message", p.Message)
	}
	return out, nil
}

// formatLabels writes labels as "k=v,k2=v2", sorted, for an event's detail.
func formatLabels(labels map[string]string) string {
	var parts []string
	for k, v := range labels {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func apiAuditEvent(e audit.Event) apitype.AuditEvent {
	return apitype.AuditEvent{Seq: e.Seq, Time: e.Time, Kind: string(e.Kind),
		Actor:   apitype.AuditActor{Kind: string(e.Actor.Kind), ID: e.Actor.ID, Name: e.Actor.Name},
		FleetID: e.FleetID, Fleet: e.Fleet, DeviceID: e.DeviceID, Device: e.Device, Session: e.Session,
		Detail: e.Detail, PrevHash: e.PrevHash, Hash: e.Hash}
}

// auditDenied records a request refused for want of a role: reaching into
// a fleet the caller has no role in (cross_fleet_denied), or asking more
// than their role allows (access_denied). f is nil for administrators'
// routes.
func (c *call) auditDenied(f *store.Fleet, role store.Role) {
	ev := audit.Event{Kind: audit.AccessDenied, Actor: c.actor(), Detail: map[string]string{
		"route": c.route.pattern(), "path": c.r.URL.Path, "remote": clientAddr(c.r), "role": string(role)}}
	if f != nil {
		ev.FleetID, ev.Fleet = f.ID, f.Name
		if rank(role) == 0 {
			ev.Kind = audit.CrossFleetDenied
		} else {
			ev.Detail["needs"] = string(c.route.role)
		}
	}
	c.s.record(c, ev)
}
