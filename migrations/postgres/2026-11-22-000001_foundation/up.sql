-- Timestamps are seconds since the Unix epoch (UTC) on both backends.
CREATE TABLE clients (
    id BIGSERIAL PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    logo_url TEXT,
    public BOOLEAN NOT NULL DEFAULT FALSE,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    allowed_scopes TEXT NOT NULL DEFAULT '',
    allowed_grant_types TEXT NOT NULL DEFAULT '',
    access_token_ttl BIGINT,
    refresh_token_ttl BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX clients_created_at_idx ON clients (created_at, id);

CREATE TABLE redirect_uris (
    id BIGSERIAL PRIMARY KEY,
    client_id BIGINT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    uri TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (client_id, uri)
);

CREATE TABLE client_secrets (
    id BIGSERIAL PRIMARY KEY,
    client_id BIGINT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    description TEXT NOT NULL DEFAULT '',
    hash TEXT NOT NULL,
    hint TEXT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX client_secrets_client_idx ON client_secrets (client_id);

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'readonly', 'user')),
    created_at BIGINT NOT NULL,
    last_login_at BIGINT
);

CREATE TABLE signing_keys (
    id BIGSERIAL PRIMARY KEY,
    kid TEXT NOT NULL UNIQUE,
    alg TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
