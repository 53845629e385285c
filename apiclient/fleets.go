package apiclient

import (
	"context"
	"net/http"

	"github.com/porthole/porthole/apitype"
)

// Fleets lists the fleets the caller belongs to (all of them for an
// administrator), each with the caller's role in it.
func (c *Client) Fleets(ctx context.Context) ([]apitype.Fleet, error) {
	return list[apitype.Fleet](ctx, c, "/api/v1/fleets", nil)
}

// Fleet returns one fleet by name.
func (c *Client) Fleet(ctx context.Context, name string) (*apitype.Fleet, error) {
	var f apitype.Fleet
	if err := c.Do(ctx, http.MethodGet, fleetPath(name), nil, nil, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// CreateFleet makes a new fleet (administrators only).
func (c *Client) CreateFleet(ctx context.Context, name string) (*apitype.Fleet, error) {
	var f apitype.Fleet
	if err := c.Do(ctx, http.MethodPost, "/api/v1/fleets", nil, apitype.CreateFleetRequest{Name: name}, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// Members lists the users who have a role in a fleet.
func (c *Client) Members(ctx context.Context, fleet string) ([]apitype.Member, error) {
	return list[apitype.Member](ctx, c, fleetPath(fleet)+"/members", nil)
}

// SetMember gives a user (by ID or email) a role in a fleet, replacing the
// role they had.
func (c *Client) SetMember(ctx context.Context, fleet, user, role string) error {
	return c.Do(ctx, http.MethodPut, memberPath(fleet, user), nil, apitype.Member{Role: role}, nil)
}

// RemoveMember takes a user's (by ID or email) role in a fleet away.
func (c *Client) RemoveMember(ctx context.Context, fleet, user string) error {
	return c.Do(ctx, http.MethodDelete, memberPath(fleet, user), nil, nil, nil)
}

func fleetPath(fleet string) string { return "/api/v1/fleets/" + PathSegment(fleet) }

func memberPath(fleet, user string) string {
	return fleetPath(fleet) + "/members/" + PathSegment(user)
}

// FleetPolicy returns a fleet's policy, with who may change it.
func (c *Client) FleetPolicy(ctx context.Context, fleet string) (*apitype.FleetPolicy, error) {
	var p apitype.FleetPolicy
	if err := c.Do(ctx, http.MethodGet, fleetPath(fleet)+"/policy", nil, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// SetFleetPolicy replaces a fleet's policy (its owners only); with
// req.Version, only over that version.
func (c *Client) SetFleetPolicy(ctx context.Context, fleet string, req apitype.SetFleetPolicyRequest) (*apitype.FleetPolicy, error) {
	var p apitype.FleetPolicy
	if err := c.Do(ctx, http.MethodPut, fleetPath(fleet)+"/policy", nil, req, &p); err != nil {
		return nil, err
	}
	return &p, nil
}
