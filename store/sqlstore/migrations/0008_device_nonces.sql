-- The nonces of devices' request credentials, each kept until its
-- credential expires, so that with several API nodes a credential captured
-- on its way to one is refused by all (a node's memory alone would not).

CREATE TABLE device_nonces (
    device_id  TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    nonce      TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);
