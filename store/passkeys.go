package store

import (
	"context"
	"time"
)

// Passkey is one of a user's WebAuthn credentials: what the server needs
// to check the signatures of the authenticator that holds its private
// key (which never leaves it).
type Passkey struct {
	ID     string // "psk_…", made by the store
	UserID string
	// CredentialID is the authenticator's ID of the credential: unique
	// across every user, so one authenticator's key cannot be two
	// people's.
	CredentialID []byte
	// PublicKey is the credential's public key, a COSE_Key.
	PublicKey []byte
	// AttestationFormat is the registration's attestation statement
	// format ("none", "packed", …).
	AttestationFormat string
	// AAGUID names the authenticator's model (16 bytes; zeros when it
	// would not say).
	AAGUID []byte
	// SignCount is the signature counter of the credential's last use:
	// an authenticator counts up, so a later use that does not is a
	// clone's. Authenticators that keep no counter always say 0.
	SignCount uint32
	// Transports are how the browser may reach the authenticator
	// ("internal", "usb", "hybrid", …), as the browser told at
	// registration.
	Transports []string
	// The authenticator's flags: UserVerified, whether it verified its
	// user (PIN, biometrics) at registration; BackupEligible, whether
	// the credential may be synced to other devices (fixed for its
	// life); BackupState, whether it is, as of its last use.
	UserVerified   bool
	BackupEligible bool
	BackupState    bool
	// Name is what its user calls it ("laptop's fingerprint").
	Name       string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero: never used since registration
}

// Ceremony kinds: what a WebAuthn ceremony waiting for its
// authenticator's answer is for.
const (
	CeremonyRegister     = "register"      // a logged-in user adds a passkey
	CeremonyLogin        = "login"         // a sign-in with a passkey alone (user verification required)
	CeremonySecondFactor = "second_factor" // a sign-in with a password and a passkey in place of the TOTP code
	CeremonyReauth       = "reauth"        // a logged-in user proves a fresh second factor
)

// Ceremony is a WebAuthn ceremony begun by the server and waiting for
// the browser's answer: its challenge lives here, never with the client,
// and is used once.
type Ceremony struct {
	// ID finds it: for a logged-in user's, their login's token ID and
	// the kind; for a sign-in, the hash of the secret in its browser's
	// cookie.
	ID   string
	Kind string // one of the Ceremony* kinds
	// UserID and TokenID bind it to a user and their login; empty for
	// sign-ins, which learn the user from the credential.
	UserID  string
	TokenID string
	// Session is what the WebAuthn library needs to check the answer
	// (its SessionData, as JSON): the challenge, the relying party, the
	// user verification asked for.
	Session   string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// CeremonyPurgeAfter is how long after its expiry a ceremony is kept
// before a later one's PutCeremony forgets it: long enough that server
// nodes whose clocks disagree by minutes never forget each other's live
// ones, short enough that expired ones do not pile up.
const CeremonyPurgeAfter = time.Hour

// Passkeys are users' WebAuthn credentials and the ceremonies that add
// and use them.
type Passkeys interface {
	// CreatePasskey stores a new passkey (ID and CreatedAt are filled
	// in), with the audit events ctx carries. A credential ID that is
	// already stored, the same user's or another's, is ErrConflict; a
	// user who does not exist, ErrNotFound.
	CreatePasskey(ctx context.Context, p *Passkey) error
	// ListPasskeys lists a user's passkeys, oldest first.
	ListPasskeys(ctx context.Context, userID string) ([]*Passkey, error)
	// PasskeyByCredentialID returns the passkey with this credential ID,
	// whoever's it is.
	PasskeyByCredentialID(ctx context.Context, credentialID []byte) (*Passkey, error)
	// UsePasskey records a successful use of p (its user's): SignCount,
	// BackupState and LastUsedAt as p holds them, if its stored sign
	// count is still from. It reports false when it is not (another use
	// came in between: of two uses of the same signature counter, one
	// wins); a passkey gone meanwhile is ErrNotFound.
	UsePasskey(ctx context.Context, p *Passkey, from uint32) (bool, error)
	// DeletePasskey deletes one of a user's passkeys, with the audit
	// events ctx carries, and the logins signed in with it but for the
	// token keep (the login that removes it, whose fresh factor was just
	// checked), in one transaction; it returns the IDs of the logins it
	// ended. Another user's passkey is ErrNotFound, as a missing one is.
	DeletePasskey(ctx context.Context, userID, id, keep string) (ended []string, err error)

	// PutCeremony stores a ceremony, replacing one with the same ID, and
	// forgets those that expired CeremonyPurgeAfter or more before its
	// CreatedAt. A user or token that does not exist is ErrNotFound.
	PutCeremony(ctx context.Context, c *Ceremony) error
	// TakeCeremony deletes and returns the ceremony with this ID and
	// kind if it has not expired at now: each is taken once, by one
	// caller. None (or another kind's, which stays) is ErrNotFound.
	TakeCeremony(ctx context.Context, id, kind string, now time.Time) (*Ceremony, error)
}
