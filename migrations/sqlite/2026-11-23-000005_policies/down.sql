DROP TRIGGER clients_updated;
CREATE TRIGGER clients_updated AFTER UPDATE OF client_id, name, description, logo_url, public,
    enabled, allowed_scopes, allowed_grant_types, access_token_ttl, refresh_token_ttl ON clients
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;
ALTER TABLE clients DROP COLUMN rate_limit_per_minute;
ALTER TABLE clients DROP COLUMN ip_allowlist;
