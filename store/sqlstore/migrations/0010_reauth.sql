-- Re-authentication for reach: a fleet's policy may ask that a session be
-- opened only with a login that proved a second factor (a TOTP code)
-- within the last reauth milliseconds (0: no such rule). factor_at is when
-- each login token last proved one: at login, and at each re-authentication
-- (POST /api/v1/reauth). Tokens from before this migration have 0: under
-- such a rule their users re-authenticate once.
ALTER TABLE fleet_policies ADD COLUMN reauth BIGINT NOT NULL DEFAULT 0 CHECK (reauth >= 0);
ALTER TABLE tokens ADD COLUMN factor_at BIGINT NOT NULL DEFAULT 0;
