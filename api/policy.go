package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/audit"
	"github.com/porthole/porthole/fleetpolicy"
	"github.com/porthole/porthole/session"
	"github.com/porthole/porthole/store"
)

// Fleet policy: what a fleet's owners decide for every session on its
// devices (package fleetpolicy applies it; package session enforces it on
// each request). Its owners set it; every member reads it. Every decision
// it makes is in the audit log with the rule that made it: a change as
// policy_changed with the old and the new policy, a refusal as
// policy_refused, an approval of the four-eyes rule as
// four_eyes_approved, and what a session was given in its
// session_requested.

// maxPolicyPorts bounds the ports a policy lists.
const maxPolicyPorts = 64

// maxReauthS bounds a policy's reauth window: a day.
const maxReauthS = 24 * 60 * 60

// getPolicy is GET /api/v1/fleets/{fleet}/policy.
func (s *Server) getPolicy(c *call, _ *none) (apitype.FleetPolicy, error) {
	f, _, err := c.fleet(c.r.PathValue("fleet"))
	if err != nil {
		return apitype.FleetPolicy{}, err
	}
	p, err := s.store.GetFleetPolicy(c.ctx, f.ID)
	if err != nil {
		return apitype.FleetPolicy{}, fmt.Errorf("reading the policy of %s: %w", f.Name, err)
	}
	return s.apiPolicy(c, f, p)
}

// putPolicy is PUT /api/v1/fleets/{fleet}/policy: the fleet's owners
// replace its policy, over the version they read when they say which.
func (s *Server) putPolicy(c *call, req *apitype.SetFleetPolicyRequest) (apitype.FleetPolicy, error) {
	f, _, err := c.fleet(c.r.PathValue("fleet"))
	if err != nil {
		return apitype.FleetPolicy{}, err
	}
	p := &store.FleetPolicy{FleetID: f.ID, ConsentFloor: req.ConsentFloor, FourEyes: req.FourEyes,
		MaxDuration: time.Duration(req.MaxDurationS) * time.Second, IdleTimeout: time.Duration(req.IdleTimeoutS) * time.Second,
		Reauth:    time.Duration(req.ReauthS) * time.Second,
		UpdatedAt: s.now().UTC(), UpdatedBy: c.user.Email}
	if req.ReauthS != 0 && (req.ReauthS < 60 || req.ReauthS > maxReauthS) {
		return apitype.FleetPolicy{}, badRequest("reauth_s %d must be between 60 (a minute) and %d (a day), or 0 for no rule", req.ReauthS, maxReauthS)
	}
	if req.Ports != nil {
		if len(*req.Ports) > maxPolicyPorts {
			return apitype.FleetPolicy{}, badRequest("a policy lists at most %d ports, not %d", maxPolicyPorts, len(*req.Ports))
		}
		p.Ports = []int{}
		for _, port := range *req.Ports {
			if port < 1 || port > 65535 {
				return apitype.FleetPolicy{}, badRequest("port %d is not a port (1-65535)", port)
			}
			if !slices.Contains(p.Ports, port) {
				p.Ports = append(p.Ports, port)
			}
		}
		slices.Sort(p.Ports)
	}
	switch req.ConsentFloor {
	case "", store.FloorApprove, store.FloorManual:
	case "auto":
		return apitype.FleetPolicy{}, badRequest("consent_floor auto asks nothing of a device (auto is the least consent); leave it empty for no floor, or use approve or manual")
	default:
		return apitype.FleetPolicy{}, badRequest("consent_floor %q must be approve, manual, or empty for none", req.ConsentFloor)
	}
	if req.MaxDurationS < 0 || req.IdleTimeoutS < 0 {
		return apitype.FleetPolicy{}, badRequest("max_duration_s and idle_timeout_s cannot be negative (0: no cap)")
	}
	old, err := s.store.GetFleetPolicy(c.ctx, f.ID)
	if err != nil {
		return apitype.FleetPolicy{}, fmt.Errorf("reading the policy of %s: %w", f.Name, err)
	}
	if req.Version != nil && *req.Version != old.Version {
		if old.Version == *req.Version+1 && old.UpdatedBy == c.user.Email && samePolicy(old, p) {
			// This very change, made a moment ago: a retried write
			// (the client sends a PUT again when the node under it dies).
			return s.apiPolicy(c, f, old)
		}
		return apitype.FleetPolicy{}, policyChanged(f, old)
	}
	p.Version = old.Version
	changed := audit.Event{Kind: audit.PolicyChanged, Fleet: f.Name, Detail: map[string]string{
		"old": fleetpolicy.Describe(old), "new": fleetpolicy.Describe(p), "version": strconv.FormatInt(old.Version+1, 10)}}
	err = s.store.SetFleetPolicy(c.withAudit(changed).ctx, p)
	if errors.Is(err, store.ErrConflict) {
		// Another owner's change came between the read and the write.
		if now, rerr := s.store.GetFleetPolicy(c.ctx, f.ID); rerr == nil {
			old = now
		}
		return apitype.FleetPolicy{}, policyChanged(f, old)
	} else if err != nil {
		return apitype.FleetPolicy{}, fmt.Errorf("setting the policy of %s: %w", f.Name, err)
	}
	s.logger.Info("fleet policy set", "request_id", requestID(c.ctx), "by", c.user.Email, "fleet", f.Name,
		"policy", fleetpolicy.Describe(p), "version", p.Version)
	return s.apiPolicy(c, f, p)
}

// samePolicy reports whether a and b decide the same.
func samePolicy(a, b *store.FleetPolicy) bool {
	return (a.Ports == nil) == (b.Ports == nil) && slices.Equal(a.Ports, b.Ports) && a.ConsentFloor == b.ConsentFloor &&
		a.MaxDuration == b.MaxDuration && a.IdleTimeout == b.IdleTimeout && a.FourEyes == b.FourEyes && a.Reauth == b.Reauth
}

// policyChanged is the conflict of a change made over a version that is
// no longer the policy's.
func policyChanged(f *store.Fleet, now *store.FleetPolicy) error {
	return conflict("the policy of fleet %s changed since you read it (it is at version %d, set by %s: %s); look at it again, then set yours",
		f.Name, now.Version, now.UpdatedBy, fleetpolicy.Describe(now))
}

// apiPolicy is p as the API shows it, with who may change it.
func (s *Server) apiPolicy(c *call, f *store.Fleet, p *store.FleetPolicy) (apitype.FleetPolicy, error) {
	owners, err := s.fleetOwners(c, f.ID)
	if err != nil {
		return apitype.FleetPolicy{}, err
	}
	idle, maxDur := session.DefaultIdleTimeout, session.DefaultMaxDuration
	if s.sessions != nil {
		idle, maxDur = s.sessions.Limits()
	}
	out := apitype.FleetPolicy{Fleet: f.Name, ConsentFloor: p.ConsentFloor, FourEyes: p.FourEyes,
		MaxDurationS: int(p.MaxDuration / time.Second), IdleTimeoutS: int(p.IdleTimeout / time.Second),
		ReauthS: int(p.Reauth / time.Second), Version: p.Version, UpdatedAt: p.UpdatedAt, UpdatedBy: p.UpdatedBy, Owners: owners,
		ServerMaxDurationS: int(maxDur / time.Second), ServerIdleTimeoutS: int(idle / time.Second)}
	if p.Ports != nil {
		ports := slices.Clone(p.Ports)
		out.Ports = &ports
	}
	return out, nil
}

// fleetOwners are the emails of the fleet's owners, sorted.
func (s *Server) fleetOwners(c *call, fleetID string) ([]string, error) {
	ms, err := s.store.FleetMembers(c.ctx, fleetID)
	if err != nil {
		return nil, fmt.Errorf("listing the owners of fleet %s: %w", fleetID, err)
	}
	owners := []string{}
	for _, m := range ms {
		if m.Role == store.RoleOwner {
			owners = append(owners, m.Email)
		}
	}
	slices.Sort(owners)
	return owners, nil
}

// refusedByPolicy records the fleet policy's refusal of what the caller
// asked (policy_refused, with the rule; ev names the device and session
// and adds details) and answers it in words that name the rule and who can
// change it.
// checkReauth refuses, audited, an action on a device of ev's fleet
// under pol (read by the caller) when the fleet's reauth rule asks for a
// fresher second factor than the caller's login entered. ev names the
// fleet and the device; its Detail is completed here.
func (c *call) checkReauth(pol *store.FleetPolicy, action string, ev audit.Event) error {
	r, ok := errors.AsType[*fleetpolicy.Refusal](fleetpolicy.CheckReauth(pol, ev.Fleet, action, c.token.FactorAt, c.s.now()))
	if !ok {
		return nil
	}
	if ev.Detail == nil {
		ev.Detail = map[string]string{}
	}
	ev.Detail["policy_version"] = strconv.FormatInt(pol.Version, 10)
	ev.Detail["reauth_window"] = fleetpolicy.Duration(pol.Reauth)
	ev.Detail["token_id"] = c.token.ID
	if !c.token.FactorAt.IsZero() {
		ev.Detail["factor_at"] = c.token.FactorAt.UTC().Format(time.RFC3339)
	}
	return c.refusedByPolicy(ev.FleetID, r, ev)
}

func (c *call) refusedByPolicy(fleetID string, r *fleetpolicy.Refusal, ev audit.Event) error {
	ev.Kind, ev.Actor, ev.FleetID, ev.Fleet = audit.PolicyRefused, c.actor(), fleetID, r.Fleet
	if ev.Detail == nil {
		ev.Detail = map[string]string{}
	}
	ev.Detail["rule"], ev.Detail["refusal"] = r.Rule, r.Words
	ev.Detail["route"], ev.Detail["remote"] = c.route.pattern(), clientAddr(c.r)
	c.s.record(c, ev)
	owners, err := c.s.fleetOwners(c, fleetID)
	if err != nil {
		c.s.logger.Warn("listing the owners of a fleet for a refusal", "request_id", requestID(c.ctx), "fleet", r.Fleet, "err", err)
	}
	c.s.logger.Info("refused by the fleet's policy", "request_id", requestID(c.ctx), "by", c.user.Email, "fleet", r.Fleet,
		"rule", r.Rule, "refusal", r.Words)
	if r.Rule == fleetpolicy.RuleReauth {
		return errorf(http.StatusForbidden, apitype.CodeReauthRequired, "%s; send a fresh code (`porthole reauth`, or a passkey in the console) and ask again", r.Explain(owners))
	}
	return errorf(http.StatusForbidden, apitype.CodePolicy, "%s", r.Explain(owners))
}
