-- Single sign-on (OIDC). A user made by an SSO login names its identity in
-- sso_subject ("<issuer> <subject>"; '' for local users, who keep their
-- password and TOTP). An SSO login's token keeps the provider's refresh
-- token, sealed by the API with a key the database does not hold, and when
-- it is next due (sso_refresh_at): a node's sweep claims a due token by
-- moving sso_refresh_at (a guarded update, so nodes sharing the database
-- never use the same refresh token twice), refreshes it at the provider,
-- and revokes the login if the provider refuses.
ALTER TABLE users ADD COLUMN sso_subject TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX users_sso_subject ON users (sso_subject) WHERE sso_subject <> '';
ALTER TABLE tokens ADD COLUMN sso_refresh TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN sso_refresh_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tokens_sso_refresh_at ON tokens (sso_refresh_at) WHERE sso_refresh <> '';

-- `porthole login --sso`: RFC 8628 device authorization grants that
-- portholed serves to its CLI. Only the hashes of the device code (the
-- CLI's) and the user code (typed in the browser) are kept; a grant lasts
-- ten minutes and is used once.
CREATE TABLE device_grants (
    id             TEXT PRIMARY KEY,
    device_hash    TEXT NOT NULL UNIQUE,
    user_hash      TEXT NOT NULL UNIQUE,
    requester      TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    polled_at      BIGINT NOT NULL DEFAULT 0,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied', 'used')),
    user_id        TEXT REFERENCES users (id) ON DELETE CASCADE,
    sso_refresh    TEXT NOT NULL DEFAULT '',
    sso_refresh_at BIGINT NOT NULL DEFAULT 0,
    login_expires  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX device_grants_expires_at ON device_grants (expires_at);
