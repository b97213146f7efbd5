-- Incremented when a user's password is reset: sessions signed in before carry the old value
-- and are ended (a session cookie cannot be deleted on the server otherwise).
ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;
