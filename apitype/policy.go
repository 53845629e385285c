package apitype

import "time"

// CodePolicy is the code of a request the fleet's policy refused (403): the
// message names the rule and who can change it.
const CodePolicy = "policy"

// CodeReauthRequired is the code of a request refused for want of a
// fresh second factor (403): a session request under the fleet's reauth
// rule, whose window the login's last second factor is older than, or
// adding or removing a passkey (5 minutes). The client asks for a fresh
// authenticator code or a passkey, sends it to POST /api/v1/reauth
// (ReauthRequest) and asks again.
const CodeReauthRequired = "reauth_required"

// CodeWrongCode is POST /api/v1/reauth's answer (403) to a code that is
// not the caller's current authenticator code, or was used already.
const CodeWrongCode = "wrong_code"

// ReauthRequest is POST /api/v1/reauth: a fresh second factor, recorded
// as this login's: a code from the caller's authenticator app, or a
// passkey's signature (from POST /api/v1/reauth/passkey-options).
type ReauthRequest struct {
	TOTP    string            `json:"totp,omitempty"`
	Passkey *PasskeyAssertion `json:"passkey,omitzero"`
}

// ReauthResponse is POST /api/v1/reauth's answer: when the login proved
// its second factor.
type ReauthResponse struct {
	FactorAt time.Time `json:"factor_at"`
}

// Consent floors, as in FleetPolicy.ConsentFloor: the device asks for the
// stricter of its owner's consent mode and the floor (auto < approve <
// manual). Empty: none.
const (
	FloorApprove = "approve"
	FloorManual  = "manual"
)

// FleetPolicy is GET /api/v1/fleets/{fleet}/policy: what the fleet's owners
// decide for every session on its devices. It only narrows what the
// server's limits and each device's owner (agent.yaml) allow: a device
// grants only the ports both its owner and the fleet allow, and asks for
// the stricter of its owner's consent and the floor.
type FleetPolicy struct {
	Fleet string `json:"fleet"`
	// Ports, when not null, are the only device ports a session may ask
	// for ([] none: a shell and file copies only); null: the fleet names
	// no ports, the owners' allow_ports decide alone.
	Ports *[]int `json:"ports"`
	// ConsentFloor is approve, manual, or empty for none.
	ConsentFloor string `json:"consent_floor,omitempty"`
	// MaxDurationS and IdleTimeoutS cap the fleet's sessions below the
	// server's limits (ServerMaxDurationS, ServerIdleTimeoutS); 0: none.
	MaxDurationS int `json:"max_duration_s,omitempty"`
	IdleTimeoutS int `json:"idle_timeout_s,omitempty"`
	// FourEyes: a session needs a second engineer of the fleet (an
	// operator or owner other than the one who asks) to approve it
	// before its device is asked.
	FourEyes bool `json:"four_eyes"`
	// ReauthS, when not 0: a session opens only with a login that proved
	// a second factor (its TOTP code) within the last ReauthS seconds.
	ReauthS int `json:"reauth_s,omitempty"`
	// Version counts the times the policy was set; 0: never.
	Version   int64     `json:"version"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	// Owners are the fleet's owners, who may change the policy (and
	// administrators).
	Owners []string `json:"owners"`
	// ServerMaxDurationS and ServerIdleTimeoutS are the server's own
	// limits, which the fleet's caps can only shorten.
	ServerMaxDurationS int `json:"server_max_duration_s"`
	ServerIdleTimeoutS int `json:"server_idle_timeout_s"`
}

// SetFleetPolicyRequest is PUT /api/v1/fleets/{fleet}/policy: the fleet's
// whole policy, replacing the one it had (a field left out is that rule
// off).
type SetFleetPolicyRequest struct {
	// Ports, when not null, are the only device ports a session may ask
	// for ([] none); null or left out: the fleet names none.
	Ports *[]int `json:"ports,omitempty"`
	// ConsentFloor is approve, manual, or empty for none.
	ConsentFloor string `json:"consent_floor,omitempty"`
	// MaxDurationS and IdleTimeoutS cap the fleet's sessions; 0: none.
	MaxDurationS int  `json:"max_duration_s,omitempty"`
	IdleTimeoutS int  `json:"idle_timeout_s,omitempty"`
	FourEyes     bool `json:"four_eyes,omitempty"`
	// ReauthS, when not 0: a session needs a second factor within the
	// last ReauthS seconds (at least 60).
	ReauthS int `json:"reauth_s,omitempty"`
	// Version, when given, is the version the change was made over (as
	// read from GET): if the policy changed since, nothing is written and
	// the answer is 409. Left out: over whatever is there.
	Version *int64 `json:"version,omitempty"`
}
