-- Recordings devices upload of their sessions: the sizes of their files
-- here, the bytes on the server's disk (recordings_dir). A recording goes
-- with its session. Files only grow, by uploads at their current size;
-- meta.json is replaced whole.

CREATE TABLE recordings (
    session_id   TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    files        INTEGER NOT NULL DEFAULT 0 CHECK (files >= 0),
    bytes        BIGINT NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    started_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    completed_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX recordings_updated_at ON recordings (updated_at);

CREATE TABLE recording_files (
    session_id TEXT NOT NULL REFERENCES recordings (session_id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    size       BIGINT NOT NULL CHECK (size >= 0),
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (session_id, name)
);

-- Owners' read-only links: one per device, a new one replaces the last.
-- Only the secret's hash is kept.
CREATE TABLE owner_tokens (
    id         TEXT PRIMARY KEY,
    device_id  TEXT NOT NULL UNIQUE REFERENCES devices (id) ON DELETE CASCADE,
    hash       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    CHECK (expires_at > created_at)
);
