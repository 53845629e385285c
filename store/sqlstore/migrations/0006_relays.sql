-- The server nodes that serve the relay, as each registers itself and
-- beats its heart (scale-out: a session is placed on a live one), and the
-- relay each session was placed on. A relay's row outlives it until a
-- live node removes stale ones; a session keeps the address it was given.

CREATE TABLE relays (
    id           TEXT PRIMARY KEY,
    addr         TEXT NOT NULL,
    ssh_addr     TEXT NOT NULL DEFAULT '',
    region       TEXT NOT NULL DEFAULT '',
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

ALTER TABLE sessions ADD COLUMN relay_id TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN relay_addr TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN relay_ssh_addr TEXT NOT NULL DEFAULT '';
