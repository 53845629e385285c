-- Fleets, users and their roles, API tokens, enrollment tokens and devices.
--
-- Only portable types (TEXT, BIGINT, INTEGER), so this one file serves
-- SQLite and PostgreSQL: times are unix milliseconds UTC (0 means never),
-- booleans are 0 or 1, labels are a JSON object. IDs are made by the store.

CREATE TABLE fleets (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    totp_secret    TEXT NOT NULL,
    totp_last_step BIGINT NOT NULL DEFAULT 0,
    admin          INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
    created_at     BIGINT NOT NULL
);

CREATE TABLE roles (
    fleet_id TEXT NOT NULL REFERENCES fleets (id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role     TEXT NOT NULL CHECK (role IN ('owner', 'operator', 'auditor')),
    PRIMARY KEY (fleet_id, user_id)
);
CREATE INDEX roles_user_id ON roles (user_id);

CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash         TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tokens_user_id ON tokens (user_id);

-- An enrollment token belongs to its fleet; it outlives the user who made it.
CREATE TABLE enrollment_tokens (
    id         TEXT PRIMARY KEY,
    fleet_id   TEXT NOT NULL REFERENCES fleets (id) ON DELETE CASCADE,
    hash       TEXT NOT NULL UNIQUE,
    uses_left  INTEGER NOT NULL,
    max_uses   INTEGER NOT NULL,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CHECK (max_uses >= 1 AND uses_left >= 0 AND uses_left <= max_uses)
);
CREATE INDEX enrollment_tokens_fleet_id ON enrollment_tokens (fleet_id);

CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    fleet_id    TEXT NOT NULL REFERENCES fleets (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    host_cert   TEXT NOT NULL,
    labels      TEXT NOT NULL DEFAULT '{}',
    enrolled_at BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL DEFAULT 0,
    online      INTEGER NOT NULL DEFAULT 0 CHECK (online IN (0, 1)),
    UNIQUE (fleet_id, name)
);
