DROP TRIGGER clients_inserted;
CREATE TRIGGER clients_inserted AFTER INSERT ON clients
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;

DROP TRIGGER clients_deleted;
CREATE TRIGGER clients_deleted AFTER DELETE ON clients
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;

DROP TRIGGER clients_updated;
CREATE TRIGGER clients_updated AFTER UPDATE OF client_id, name, description, logo_url, public,
    enabled, allowed_scopes, allowed_grant_types, access_token_ttl, refresh_token_ttl,
    ip_allowlist, rate_limit_per_minute, token_endpoint_auth_method, jwks, hmac_key,
    loopback_any_port ON clients
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;

DROP TRIGGER client_secrets_inserted;
CREATE TRIGGER client_secrets_inserted AFTER INSERT ON client_secrets
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;

DROP TRIGGER client_secrets_deleted;
CREATE TRIGGER client_secrets_deleted AFTER DELETE ON client_secrets
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;

DROP TRIGGER client_secrets_updated;
CREATE TRIGGER client_secrets_updated AFTER UPDATE OF client_id, description, hash, hint, expires_at ON client_secrets
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;

DROP TRIGGER redirect_uris_inserted;
CREATE TRIGGER redirect_uris_inserted AFTER INSERT ON redirect_uris
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;

DROP TRIGGER redirect_uris_deleted;
CREATE TRIGGER redirect_uris_deleted AFTER DELETE ON redirect_uris
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;

DROP TRIGGER redirect_uris_updated;
CREATE TRIGGER redirect_uris_updated AFTER UPDATE ON redirect_uris
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;

DROP TABLE client_changes;
