-- Fleet policy: what a fleet's owners decide for every session on its
-- devices. It only narrows what the server's limits and each device's
-- owner (agent.yaml) allow:
--   ports          JSON list of the only device ports a session may ask
--                  for; NULL: the fleet names none ([] allows none);
--   consent_floor  the device asks for the stricter of its owner's mode and
--                  this ('' none, 'approve', 'manual');
--   max_duration,  caps below the server's limits, in milliseconds; 0: the
--   idle_timeout   server's;
--   four_eyes      1: a second engineer of the fleet must approve each
--                  session before its device is asked.
-- version counts the changes (an owner's change is written only over the
-- version it read, so its audit event names the policy it replaced). A
-- fleet without a row decides nothing.

CREATE TABLE fleet_policies (
    fleet_id      TEXT PRIMARY KEY REFERENCES fleets (id) ON DELETE CASCADE,
    ports         TEXT,
    consent_floor TEXT NOT NULL DEFAULT '' CHECK (consent_floor IN ('', 'approve', 'manual')),
    max_duration  BIGINT NOT NULL DEFAULT 0 CHECK (max_duration >= 0),
    idle_timeout  BIGINT NOT NULL DEFAULT 0 CHECK (idle_timeout >= 0),
    four_eyes     INTEGER NOT NULL DEFAULT 0 CHECK (four_eyes IN (0, 1)),
    version       BIGINT NOT NULL CHECK (version >= 1),
    updated_at    BIGINT NOT NULL,
    updated_by    TEXT NOT NULL DEFAULT ''
);

-- A session of a four-eyes fleet stays requested until a second engineer
-- approves it (approved_*); policy is what of the fleet's policy its open
-- command carried to the device (JSON; '' nothing).
ALTER TABLE sessions ADD COLUMN four_eyes INTEGER NOT NULL DEFAULT 0 CHECK (four_eyes IN (0, 1));
ALTER TABLE sessions ADD COLUMN approved_by TEXT REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE sessions ADD COLUMN approved_email TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN approved_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN policy TEXT NOT NULL DEFAULT '';

-- A third kind of request in the support queue, four_eyes: a session
-- waiting for a second engineer, filed by the server. A session may then
-- have an approval request (its owner's) and a four-eyes one. SQLite
-- cannot change a CHECK constraint in place, so the table is made again
-- (nothing refers to it) with the same columns, rows and indexes.
CREATE TABLE support_requests_0007 (
    id            TEXT PRIMARY KEY,
    fleet_id      TEXT NOT NULL REFERENCES fleets (id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('support', 'approval', 'four_eyes')),
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
    CHECK ((kind <> 'support') = (session_id IS NOT NULL)),
    CHECK (expires_at >= created_at)
);
INSERT INTO support_requests_0007 (id, fleet_id, device_id, kind, session_id, reason, requested_by, state,
    claimed_by, claimed_email, close_reason, closed_by, created_at, expires_at, claimed_at, closed_at)
    SELECT id, fleet_id, device_id, kind, session_id, reason, requested_by, state,
    claimed_by, claimed_email, close_reason, closed_by, created_at, expires_at, claimed_at, closed_at
    FROM support_requests;
DROP TABLE support_requests;
ALTER TABLE support_requests_0007 RENAME TO support_requests;
CREATE INDEX support_requests_fleet_id ON support_requests (fleet_id, created_at);
CREATE INDEX support_requests_device_id ON support_requests (device_id, created_at);
CREATE UNIQUE INDEX support_requests_session_id ON support_requests (session_id, kind);
CREATE INDEX support_requests_open ON support_requests (state) WHERE state <> 'closed';
