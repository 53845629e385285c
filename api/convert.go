package api

import (
	"github.com/porthole/porthole/apitype"
	"github.com/porthole/porthole/store"
)

// Conversions from the store's types to the wire's. Secrets (password
// hashes, TOTP secrets, token hashes) have no field to go to.

func apiUser(u *store.User, ms []*store.Membership) apitype.User {
	out := apitype.User{ID: u.ID, Email: u.Email, Admin: u.Admin, SSO: u.SSOSubject != "", CreatedAt: u.CreatedAt}
	for _, m := range ms {
		out.Roles = append(out.Roles, apitype.FleetRole{Fleet: m.FleetName, Role: string(m.Role)})
	}
	return out
}

func apiFleet(f *store.Fleet, role store.Role) apitype.Fleet {
	return apitype.Fleet{ID: f.ID, Name: f.Name, CreatedAt: f.CreatedAt, Role: string(role)}
}

func apiMember(m *store.Membership) apitype.Member {
	return apitype.Member{UserID: m.UserID, Email: m.Email, Role: string(m.Role)}
}

func apiToken(t *store.Token, current bool) apitype.TokenInfo {
	return apitype.TokenInfo{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt,
		LastUsedAt: t.LastUsedAt, Current: current}
}

func apiEnrollmentToken(t *store.EnrollmentToken, fleet string) apitype.EnrollmentToken {
	return apitype.EnrollmentToken{ID: t.ID, Fleet: fleet, UsesLeft: t.UsesLeft, MaxUses: t.MaxUses,
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt}
}

func apiDevice(d *store.Device) apitype.Device {
	ad := apitype.Device{ID: d.ID, Fleet: d.FleetName, Name: d.Name, Labels: d.Labels, PublicKey: d.PublicKey,
		EnrolledAt: d.EnrolledAt, LastSeen: d.LastSeen, Online: d.Online}
	if a := d.Agent; a.Reported() {
		ad.Agent = &apitype.DeviceAgent{Version: a.Version, Capabilities: nonNil(a.Capabilities), Consent: a.Consent,
			AllowPorts: nonNil(a.AllowPorts), ReportedAt: a.ReportedAt}
	}
	return ad
}

// nonNil is l, or an empty list for nil, so that JSON says [] not null.
func nonNil[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}

// convertAll maps a list; an empty list answers [] rather than null.
func convertAll[T, U any](in []T, f func(T) U) []U {
	out := make([]U, 0, len(in))
	for _, v := range in {
		out = append(out, f(v))
	}
	return out
}
