package store

import (
	"context"
	"time"
)

// Consent floors a fleet's policy may set: the device asks for the
// stricter of its owner's consent mode and the floor (auto < approve <
// manual). The values are control's (FloorApprove, FloorManual).
const (
	FloorNone    = ""
	FloorApprove = "approve"
	FloorManual  = "manual"
)

// FleetPolicy is what a fleet's owners decide for every session on the
// fleet's devices. It can only narrow: the server's limits and each
// device's owner (agent.yaml) still decide the rest. The zero value,
// Version 0, is a fleet whose policy was never set, which decides nothing.
type FleetPolicy struct {
	FleetID string
	// Ports, when not nil, are the only device ports a session may ask
	// for; empty and not nil, none. Nil: the fleet names no ports (the
	// owner's allow_ports alone decide).
	Ports []int
	// ConsentFloor is FloorNone, FloorApprove or FloorManual.
	ConsentFloor string
	// MaxDuration and IdleTimeout cap the fleet's sessions below the
	// server's own limits; zero: the server's.
	MaxDuration, IdleTimeout time.Duration
	// FourEyes: a session needs a second engineer of the fleet (an
	// operator or owner other than the one who asks) to approve it
	// before its device is asked.
	FourEyes bool
	// Reauth, when not zero: a session may open only with a login that
	// proved a second factor within the last Reauth (store.Token.FactorAt).
	Reauth time.Duration
	// Version counts the times the policy was set: 0 for one never set.
	Version int64
	// UpdatedAt and UpdatedBy (an email) say when and by whom it was
	// last set.
	UpdatedAt time.Time
	UpdatedBy string
}

// FleetPolicies keeps the fleets' policies, part of Store.
type FleetPolicies interface {
	// GetFleetPolicy returns the fleet's policy: the zero one (with
	// FleetID) if it was never set. ErrNotFound: no such fleet.
	GetFleetPolicy(ctx context.Context, fleetID string) (*FleetPolicy, error)
	// SetFleetPolicy replaces the fleet's policy with p if the stored
	// one is still at p.Version (0: never set), atomically, and sets
	// p.Version to the next version and p.UpdatedAt to when (now when
	// zero). ErrConflict: the policy changed since p.Version was read,
	// and nothing was written; ErrNotFound: no such fleet. An owner's
	// change is thus recorded against the policy it replaced, which the
	// audit event can name.
	SetFleetPolicy(ctx context.Context, p *FleetPolicy) error
}
