-- The passkey a login was signed in with (issue 15): removing a passkey
-- ends the logins it made, in the same transaction (the store deletes
-- them, but for the login that removes it, whose own fresh factor was just
-- proved). Empty for logins made otherwise.
ALTER TABLE tokens ADD COLUMN passkey_id TEXT NOT NULL DEFAULT '';
CREATE INDEX tokens_passkey_id ON tokens (passkey_id) WHERE passkey_id <> '';
