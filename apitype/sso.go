package apitype

// Single sign-on (docs/architecture.md, Logins). The web console signs in
// at GET /api/v1/sso/login; `porthole login --sso` uses the device
// authorization grant of RFC 8628, which portholed serves to its own CLI:
// POST /api/v1/sso/device-code gives a device code (the CLI's) and a user code
// (the engineer's, to confirm at VerificationURI in any browser), and the
// CLI polls POST /api/v1/sso/token with the device code until the
// engineer has signed in at the provider, then gets an ordinary login.

// SSOInfo is GET /api/v1/sso: whether this server offers single sign-on.
type SSOInfo struct {
	Enabled bool `json:"enabled"`
}

// DeviceCodeRequest is POST /api/v1/sso/device-code: it asks for a device code. ClientName is the CLI's host
// name, shown on the verification page beside the address it came from.
type DeviceCodeRequest struct {
	ClientName string `json:"client_name,omitempty"`
}

// DeviceCodeResponse is RFC 8628's device authorization response.
type DeviceCodeResponse struct {
	DeviceCode              string `json:"device_code"`
	UserCode                string `json:"user_code"`
	VerificationURI         string `json:"verification_uri"`
	VerificationURIComplete string `json:"verification_uri_complete"`
	ExpiresIn               int    `json:"expires_in"` // seconds
	Interval                int    `json:"interval"`   // seconds between polls, at least
}

// DeviceTokenRequest polls for the login of a device code.
type DeviceTokenRequest struct {
	DeviceCode string `json:"device_code"`
}

// Refusals of POST /api/v1/sso/token (ErrorBody.Code), as RFC 8628
// section 3.5 names them. The CLI keeps polling on the first two.
const (
	CodeAuthorizationPending = "authorization_pending" // the engineer has not signed in yet
	CodeSlowDown             = "slow_down"             // polled too soon: wait 5 s longer between polls
	CodeExpiredToken         = "expired_token"         // the device code expired: start again
	CodeAccessDenied         = "access_denied"         // the sign-in was refused (the message says why)
	CodeInvalidGrant         = "invalid_grant"         // an unknown device code, or one already used
)
