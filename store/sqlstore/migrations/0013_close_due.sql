-- A closed session whose device is still due the signed close command
-- (issue 14): only nodes with the api role hold the control key that signs
-- it, so a relay node that closes a session (relay_lost, its device gone)
-- records the close with close_due set, and an API node sends the command
-- on the change notice, or at its next sweep if it missed the notice, then
-- clears it. close_due is when the command is due (unix millis; 0: nothing
-- to send): the API node that takes it moves it a lease ahead, so that
-- another sends it if that one dies before it clears it.
ALTER TABLE sessions ADD COLUMN close_due BIGINT NOT NULL DEFAULT 0;
CREATE INDEX sessions_close_due ON sessions (close_due) WHERE close_due > 0;
