-- Support requests: the queue engineers work from. A device posts one of
-- two kinds:
--   support   its owner asked for help (`porthole-agent request`); it lasts
--             as long as the owner's consent window (expires_at);
--   approval  an engineer's session waits for the owner to approve it
--             (approve consent); it names that session and lasts until the
--             owner must have answered.
-- The support code the owner reads out is never sent: the server never
-- learns it. The sessions a support request led to are those on its device
-- that began while it was open (see the store's SessionIDs).

CREATE TABLE support_requests (
    id            TEXT PRIMARY KEY,
    fleet_id      TEXT NOT NULL REFERENCES fleets (id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('support', 'approval')),
    session_id    TEXT REFERENCES sessions (id) ON DELETE CASCADE,
    reason        TEXT NOT NULL DEFAULT '',
    requested_by  TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL CHECK (state IN ('open', 'claimed', 'closed')),
    claimed_by    TEXT REFERENCES users (id) ON DELETE SET NULL,
    claimed_email TEXT NOT NULL DEFAULT '',
    close_reason  TEXT NOT NULL DEFAULT '',
    closed_by     TEXT NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    claimed_at    BIGINT NOT NULL DEFAULT 0,
    closed_at     BIGINT NOT NULL DEFAULT 0,
    CHECK ((state = 'closed') = (closed_at > 0)),
    CHECK ((kind = 'approval') = (session_id IS NOT NULL)),
    CHECK (expires_at >= created_at)
);
CREATE INDEX support_requests_fleet_id ON support_requests (fleet_id, created_at);
CREATE INDEX support_requests_device_id ON support_requests (device_id, created_at);
CREATE UNIQUE INDEX support_requests_session_id ON support_requests (session_id);
-- The queue reads the unclosed ones; they are few.
CREATE INDEX support_requests_open ON support_requests (state) WHERE state <> 'closed';
