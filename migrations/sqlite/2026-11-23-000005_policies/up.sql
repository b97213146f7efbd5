-- Per-client policies: an IP allowlist (IPs and CIDR ranges, one per line; empty = any address)
-- and a token-endpoint rate limit (requests per minute; NULL = none).
ALTER TABLE clients ADD COLUMN ip_allowlist TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN rate_limit_per_minute BIGINT;

-- The client cache must see policy changes too.
DROP TRIGGER clients_updated;
CREATE TRIGGER clients_updated AFTER UPDATE OF client_id, name, description, logo_url, public,
    enabled, allowed_scopes, allowed_grant_types, access_token_ttl, refresh_token_ttl,
    ip_allowlist, rate_limit_per_minute ON clients
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;
