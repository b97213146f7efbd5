-- A counter that every change to a client, its secrets or its redirect URIs increments, by
-- trigger, whoever makes the change (this instance, another instance, the CLI, plain SQL).
-- Each instance keeps clients in memory and polls this one row to know when to drop them.
-- Writes of last-used times do not count (they are not in the column lists).
CREATE TABLE cache_generation (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO cache_generation (name, value) VALUES ('clients', 0);

CREATE TRIGGER clients_inserted AFTER INSERT ON clients
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;
CREATE TRIGGER clients_deleted AFTER DELETE ON clients
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;
CREATE TRIGGER clients_updated AFTER UPDATE OF client_id, name, description, logo_url, public,
    enabled, allowed_scopes, allowed_grant_types, access_token_ttl, refresh_token_ttl ON clients
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;

CREATE TRIGGER client_secrets_inserted AFTER INSERT ON client_secrets
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;
CREATE TRIGGER client_secrets_deleted AFTER DELETE ON client_secrets
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;
CREATE TRIGGER client_secrets_updated AFTER UPDATE OF client_id, description, hash, hint,
    expires_at ON client_secrets
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;

CREATE TRIGGER redirect_uris_inserted AFTER INSERT ON redirect_uris
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;
CREATE TRIGGER redirect_uris_deleted AFTER DELETE ON redirect_uris
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;
CREATE TRIGGER redirect_uris_updated AFTER UPDATE ON redirect_uris
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'; END;
