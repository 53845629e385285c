package api

import (
	"errors"
	"fmt"
	"strings"

	"github.com/porthole/porthole/store"
)

// roleAdmin is how an administrator's standing in a fleet is reported: it
// ranks as an owner in every fleet.
const roleAdmin store.Role = "admin"

// rank orders roles; 0 is no role at all.
func rank(r store.Role) int {
	switch r {
	case roleAdmin, store.RoleOwner:
		return 3
	case store.RoleOperator:
		return 2
	case store.RoleAuditor:
		return 1
	}
	return 0
}

// roleIn is the caller's role in a fleet: roleAdmin for administrators, ""
// for none.
func (c *call) roleIn(fleetID string) (store.Role, error) {
	if c.user.Admin {
		return roleAdmin, nil
	}
	ms, err := c.s.store.Memberships(c.ctx, c.user.ID)
	if err != nil {
		return "", fmt.Errorf("listing the caller's roles: %w", err)
	}
	for _, m := range ms {
		if m.FleetID == fleetID {
			return m.Role, nil
		}
	}
	return "", nil
}

// authorize checks the caller's role in f against the route's. A caller
// with no role gets missing, the same answer as for something that does
// not exist; one whose role is too weak is told which role is needed.
func (c *call) authorize(f *store.Fleet, missing error) (store.Role, error) {
	role, err := c.roleIn(f.ID)
	if err != nil {
		return "", err
	}
	if rank(role) == 0 {
		c.auditDenied(f, role)
		return "", missing
	}
	if rank(role) < rank(c.route.role) {
		c.auditDenied(f, role)
		return "", forbidden("only %s can %s; you are %s of %s", whoMay(c.route.role), c.route.action, withArticle(role), f.Name)
	}
	return role, nil
}

// fleet finds the fleet called name and checks the caller's role in it.
func (c *call) fleet(name string) (*store.Fleet, store.Role, error) {
	missing := notFound("there is no fleet %q that you belong to", name)
	f, err := c.s.store.GetFleetByName(c.ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", missing
	} else if err != nil {
		return nil, "", fmt.Errorf("looking up fleet %q: %w", name, err)
	}
	role, err := c.authorize(f, missing)
	if err != nil {
		return nil, "", err
	}
	return f, role, nil
}

// device finds the device with the given ID and checks the caller's role in
// its fleet.
func (c *call) device(id string) (*store.Device, error) {
	missing := notFound("there is no device with ID %q in your fleets", id)
	d, err := c.s.store.GetDevice(c.ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, missing
	} else if err != nil {
		return nil, fmt.Errorf("looking up device %q: %w", id, err)
	}
	if _, err := c.authorize(&store.Fleet{ID: d.FleetID, Name: d.FleetName}, missing); err != nil {
		return nil, err
	}
	return d, nil
}

// deviceNamed finds the device called name in the fleet called fleet, or
// in the caller's fleets when fleet is "", and checks the caller's role in
// its fleet as device does: a device the caller cannot see is missing, as
// is one that does not exist. A name found in several of the caller's
// fleets is a conflict that names them.
func (c *call) deviceNamed(fleet, name string) (*store.Device, error) {
	if name == "" {
		return nil, badRequest("device is required: the name of the device")
	}
	if err := checkName("device name", name); err != nil {
		return nil, err
	}
	missing := notFound("there is no device %q in your fleets", name)
	scope, err := c.fleetScope(fleet)
	if err != nil {
		return nil, err
	}
	if fleet != "" {
		missing = notFound("there is no device %q in fleet %s", name, fleet)
	}
	ds, err := c.s.store.ListDevices(c.ctx, store.DeviceFilter{Name: name, FleetIDs: scope})
	if err != nil {
		return nil, fmt.Errorf("looking up device %q: %w", name, err)
	}
	switch len(ds) {
	case 0:
		return nil, missing
	case 1:
	default:
		fleets := make([]string, len(ds))
		for i, d := range ds {
			fleets[i] = d.FleetName
		}
		return nil, conflict("there is a device %q in each of the fleets %s: name the fleet", name, strings.Join(fleets, ", "))
	}
	d := ds[0]
	if _, err := c.authorize(&store.Fleet{ID: d.FleetID, Name: d.FleetName}, missing); err != nil {
		return nil, err
	}
	return d, nil
}

// whoMay names the holders of a role or a stronger one.
func whoMay(r store.Role) string {
	switch r {
	case store.RoleOwner:
		return "a fleet owner"
	case store.RoleOperator:
		return "a fleet owner or operator"
	}
	return "a fleet member"
}

// withArticle: every role's name starts with a vowel.
func withArticle(r store.Role) string { return "an " + string(r) }
