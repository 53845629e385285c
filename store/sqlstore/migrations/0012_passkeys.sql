-- Passkeys (WebAuthn, issue 15): each user's credentials, as the API needs
-- them to check their authenticators' signatures (the private keys never
-- leave the authenticators), and the ceremonies waiting for an
-- authenticator's answer. Bytes are base64url TEXT, flags 0 or 1.
--
-- A credential ID is unique across users: one authenticator's key is never
-- two people's. sign_count is the signature counter of the last use, which
-- a genuine authenticator only moves forward. A user's passkeys go with the
-- user, and with a reset of their secrets (the store deletes them).
CREATE TABLE passkeys (
    id                 TEXT PRIMARY KEY,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id      TEXT NOT NULL UNIQUE,
    public_key         TEXT NOT NULL,
    attestation_format TEXT NOT NULL,
    aaguid             TEXT NOT NULL,
    sign_count         BIGINT NOT NULL DEFAULT 0 CHECK (sign_count >= 0 AND sign_count <= 4294967295),
    transports         TEXT NOT NULL DEFAULT '',
    user_verified      INTEGER NOT NULL DEFAULT 0 CHECK (user_verified IN (0, 1)),
    backup_eligible    INTEGER NOT NULL DEFAULT 0 CHECK (backup_eligible IN (0, 1)),
    backup_state       INTEGER NOT NULL DEFAULT 0 CHECK (backup_state IN (0, 1)),
    name               TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    last_used_at       BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX passkeys_user_id ON passkeys (user_id);

-- A ceremony's challenge waits here, never with the browser, for five
-- minutes at most, and is taken once. One of a logged-in user's is bound to
-- their login (token_id: it goes with the login); a sign-in's to the secret
-- in its browser's cookie, whose hash is its id.
CREATE TABLE webauthn_ceremonies (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('register', 'login', 'second_factor', 'reauth')),
    user_id    TEXT REFERENCES users (id) ON DELETE CASCADE,
    token_id   TEXT REFERENCES tokens (id) ON DELETE CASCADE,
    session    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expires_at ON webauthn_ceremonies (expires_at);
