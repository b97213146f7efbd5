-- JWT client authentication (RFC 7523 2.2, OpenID Connect Core 9): the method each client must
-- use (NULL = client_secret_basic or client_secret_post, the behaviour before this column), and
-- the public keys that verify a private_key_jwt client's assertions (a JWKS document or PEM).
ALTER TABLE clients ADD COLUMN token_endpoint_auth_method TEXT;
ALTER TABLE clients ADD COLUMN jwks TEXT;
-- The shared HMAC key of a client_secret_jwt client, encrypted with PORTCULLIS_MASTER_KEY
-- (AES-256-GCM, bound to the client_id): the server must read it to verify HS256 assertions.
ALTER TABLE clients ADD COLUMN hmac_key TEXT;

-- Assertion ids seen, kept until the assertion expires: a replay is refused (RFC 7523 3).
CREATE TABLE client_assertion_jtis (
    client_id BIGINT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX client_assertion_jtis_expires_at_idx ON client_assertion_jtis (expires_at);

DROP TRIGGER clients_changed ON clients;
CREATE TRIGGER clients_changed AFTER INSERT OR DELETE OR UPDATE OF client_id, name, description,
    logo_url, public, enabled, allowed_scopes, allowed_grant_types, access_token_ttl,
    refresh_token_ttl, ip_allowlist, rate_limit_per_minute, token_endpoint_auth_method, jwks,
    hmac_key ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_clients_changed();
