-- The authorization code grant (RFC 6749 4.1) with PKCE (RFC 7636), refresh tokens (RFC 6749 6)
-- and revocation (RFC 7009). Timestamps are seconds since the Unix epoch (UTC).

-- One row per authorization code. After redemption the row stays as the head of the token
-- family issued from it (refresh tokens point here), so that a replayed code or refresh token
-- can revoke the whole family (RFC 6749 4.1.2, RFC 9700 4.14.2). Purged once expires_at passes.
CREATE TABLE grants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code_hash TEXT NOT NULL UNIQUE,
    client_id BIGINT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri TEXT NOT NULL,
    redirect_uri_given BOOLEAN NOT NULL,
    scope TEXT NOT NULL,
    pkce TEXT,
    code_expires_at BIGINT NOT NULL,
    redeemed_at BIGINT,
    access_jti TEXT,
    access_expires_at BIGINT,
    revoked_at BIGINT,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX grants_expires_at_idx ON grants (expires_at);
CREATE INDEX grants_client_idx ON grants (client_id);

-- Refresh tokens, stored as SHA-256 hashes; each use rotates the token (rotated_at is set and a
-- new row is issued in the same family).
CREATE TABLE refresh_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash TEXT NOT NULL UNIQUE,
    grant_id BIGINT NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    access_jti TEXT NOT NULL,
    access_expires_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX refresh_tokens_grant_idx ON refresh_tokens (grant_id);

-- Revoked access tokens by jti, kept until the token would have expired anyway.
CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_expires_at_idx ON revoked_tokens (expires_at);

-- Remembered consent: the scopes a user has approved for a client.
CREATE TABLE consents (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id BIGINT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Server-wide secrets created on first start (the session cookie key), shared by instances.
CREATE TABLE server_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
