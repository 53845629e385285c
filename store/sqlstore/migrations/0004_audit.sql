-- The audit log: a hash chain of events (package audit). Rows are only ever
-- inserted, by the store, in the transaction of the change they record.
-- Events outlive what they name (no foreign keys): a deleted device's
-- history stays. detail is a JSON object of strings.

CREATE TABLE audit_events (
    seq        BIGINT PRIMARY KEY,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id   TEXT NOT NULL DEFAULT '',
    actor_name TEXT NOT NULL DEFAULT '',
    fleet_id   TEXT NOT NULL DEFAULT '',
    fleet      TEXT NOT NULL DEFAULT '',
    device_id  TEXT NOT NULL DEFAULT '',
    device     TEXT NOT NULL DEFAULT '',
    session_id TEXT NOT NULL DEFAULT '',
    detail     TEXT NOT NULL DEFAULT '{}',
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
-- Fleet members read their fleets' events; auditors follow a session or
-- look back from a time.
CREATE INDEX audit_events_fleet ON audit_events (fleet_id, seq);
CREATE INDEX audit_events_session ON audit_events (session_id) WHERE session_id <> '';
CREATE INDEX audit_events_at ON audit_events (at);

-- The chain's head: the last event's seq and hash. Every append updates
-- this one row in its transaction, which serialises appends across
-- connections and server nodes, and lets a check notice events deleted
-- from the end.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
