-- Server-side sign-in sessions (issue 10, item 4). The cookie carries a random 256-bit id;
-- only its SHA-256 is stored, so a copy of this table signs nobody in. Every instance sees
-- every session: signing out, a password reset, a role change or deleting the user ends them.
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
-- The cookie key is derived from the master key now (never stored): a copy of the database
-- cannot forge a cookie.
DELETE FROM server_secrets WHERE name = 'session_key';
-- Sessions used to live in the cookie, ended by moving this number; they are rows now.
ALTER TABLE users DROP COLUMN session_epoch;
