DROP TRIGGER clients_updated;
CREATE TRIGGER clients_updated AFTER UPDATE OF client_id, name, description, logo_url, public,
    enabled, allowed_scopes, allowed_grant_types, access_token_ttl, refresh_token_ttl,
    ip_allowlist, rate_limit_per_minute, token_endpoint_auth_method, jwks, hmac_key ON clients
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;
