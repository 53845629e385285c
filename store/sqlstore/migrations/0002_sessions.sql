-- Engineers' sessions on devices. A session goes with its device and fleet;
-- it outlives the user who asked for it (user_email stays for the record).

CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    fleet_id      TEXT NOT NULL REFERENCES fleets (id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    user_id       TEXT REFERENCES users (id) ON DELETE SET NULL,
    user_email    TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('requested', 'waiting_consent', 'connecting', 'active', 'closed')),
    close_reason  TEXT NOT NULL DEFAULT '',
    public_key    TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    ports         TEXT NOT NULL DEFAULT '[]',
    idle_timeout  BIGINT NOT NULL,
    max_duration  BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    active_at     BIGINT NOT NULL DEFAULT 0,
    closed_at     BIGINT NOT NULL DEFAULT 0,
    last_activity BIGINT NOT NULL DEFAULT 0,
    CHECK ((state = 'closed') = (closed_at > 0))
);
CREATE INDEX sessions_device_id ON sessions (device_id, created_at);
CREATE INDEX sessions_fleet_id ON sessions (fleet_id, created_at);
CREATE INDEX sessions_user_id ON sessions (user_id);
-- The sweeper of timeouts reads the open ones; they are few.
CREATE INDEX sessions_open ON sessions (state) WHERE state <> 'closed';
