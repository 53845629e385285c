package apitype

import "time"

// Passkeys (WebAuthn). Bytes travel as base64url strings without padding;
// the console turns them into the ArrayBuffers navigator.credentials
// takes and gives, and back. The server's side of every ceremony (its
// challenge) stays on the server, used once, for 5 minutes at most.

// CodePasskeyRefused is the 403 of a passkey that did not prove what it
// was asked to (a registration that does not verify, a re-authentication
// with a signature that does not); the message says why.
const CodePasskeyRefused = "passkey_refused"

// PasskeyCookie holds a passkey sign-in's secret in the browser that
// began it (POST /api/v1/console/passkey-options): the sign-in's
// challenge waits on the server, found by the secret's hash.
const PasskeyCookie = "__Host-porthole-passkey"

// PasskeyDescriptor names a credential: its ID and how the browser may
// reach its authenticator.
type PasskeyDescriptor struct {
	ID         string   `json:"id"`
	Transports []string `json:"transports,omitempty"`
}

// PasskeyCreationOptions is POST /api/v1/passkeys/register-options'
// answer: navigator.credentials.create's publicKey options.
type PasskeyCreationOptions struct {
	Challenge       string `json:"challenge"`
	RPID            string `json:"rp_id"`
	RPName          string `json:"rp_name"`
	UserID          string `json:"user_id"` // the user handle the authenticator keeps
	UserName        string `json:"user_name"`
	UserDisplayName string `json:"user_display_name"`
	// Algorithms are the COSE algorithms the server takes, preferred
	// first.
	Algorithms []int `json:"algorithms"`
	// ExcludeCredentials are the caller's passkeys already registered:
	// an authenticator holding one refuses to make another.
	ExcludeCredentials []PasskeyDescriptor `json:"exclude_credentials"`
	ResidentKey        string              `json:"resident_key"`      // required: a passkey signs in without a name
	UserVerification   string              `json:"user_verification"` // required
	Attestation        string              `json:"attestation"`       // none
	TimeoutMS          int                 `json:"timeout_ms"`
}

// PasskeyRequestOptions is the answer of POST
// /api/v1/console/passkey-options and POST
// /api/v1/reauth/passkey-options: navigator.credentials.get's publicKey
// options.
type PasskeyRequestOptions struct {
	Challenge string `json:"challenge"`
	RPID      string `json:"rp_id"`
	// AllowCredentials are the passkeys that may answer; empty for a
	// sign-in, where the authenticator offers its passkeys for this
	// server.
	AllowCredentials []PasskeyDescriptor `json:"allow_credentials"`
	UserVerification string              `json:"user_verification"` // required or preferred
	TimeoutMS        int                 `json:"timeout_ms"`
}

// PasskeyAttestation is a new passkey as navigator.credentials.create
// gave it.
type PasskeyAttestation struct {
	ID                      string   `json:"id"` // the credential ID (rawId)
	ClientDataJSON          string   `json:"client_data_json"`
	AttestationObject       string   `json:"attestation_object"`
	Transports              []string `json:"transports,omitempty"`
	AuthenticatorAttachment string   `json:"authenticator_attachment,omitempty"` // platform or cross-platform
}

// PasskeyAssertion is a passkey's signature as navigator.credentials.get
// gave it.
type PasskeyAssertion struct {
	ID                      string `json:"id"` // the credential ID (rawId)
	ClientDataJSON          string `json:"client_data_json"`
	AuthenticatorData       string `json:"authenticator_data"`
	Signature               string `json:"signature"`
	UserHandle              string `json:"user_handle,omitempty"`
	AuthenticatorAttachment string `json:"authenticator_attachment,omitempty"`
}

// RegisterPasskeyRequest is POST /api/v1/passkeys: the answer to the
// caller's registration options, and the name they give the passkey.
type RegisterPasskeyRequest struct {
	Name       string             `json:"name"`
	Credential PasskeyAttestation `json:"credential"`
}

// Passkey is one of the caller's passkeys (GET /api/v1/passkeys).
type Passkey struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"` // omitted: never used since registration
	// Synced: the authenticator says the passkey is backed up or synced
	// to the user's other devices (as of its last use).
	Synced     bool     `json:"synced,omitempty"`
	Transports []string `json:"transports,omitempty"`
}

// PasskeySignInRequest is POST /api/v1/console/passkey-options: a
// sign-in with a passkey alone, or, with second_factor, a passkey in
// place of the TOTP code after the password (ConsoleLoginRequest).
type PasskeySignInRequest struct {
	SecondFactor bool `json:"second_factor,omitempty"`
}

// PasskeyLoginRequest is POST /api/v1/console/passkey-login: a sign-in
// with a passkey alone.
type PasskeyLoginRequest struct {
	Passkey PasskeyAssertion `json:"passkey"`
}

// ConsoleLoginRequest is POST /api/v1/console/login: email, password and
// a second factor, the TOTP code or a passkey's signature (from the
// options of a second_factor sign-in).
type ConsoleLoginRequest struct {
	Email    string            `json:"email"`
	Password string            `json:"password"`
	TOTP     string            `json:"totp,omitempty"`
	Passkey  *PasskeyAssertion `json:"passkey,omitzero"`
}
