-- A counter that every change to a client, its secrets or its redirect URIs increments, by
-- trigger, whoever makes the change (this instance, another instance, the CLI, plain SQL).
-- Each instance keeps clients in memory and polls this one row to know when to drop them.
-- Writes of last-used times do not count (they are not in the column lists).
CREATE TABLE cache_generation (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO cache_generation (name, value) VALUES ('clients', 0);

CREATE FUNCTION portcullis_clients_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cache_generation SET value = value + 1 WHERE name = 'clients';
    RETURN NULL;
END
$$;

CREATE TRIGGER clients_changed AFTER INSERT OR DELETE OR UPDATE OF client_id, name, description,
    logo_url, public, enabled, allowed_scopes, allowed_grant_types, access_token_ttl,
    refresh_token_ttl ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_clients_changed();
CREATE TRIGGER client_secrets_changed AFTER INSERT OR DELETE OR UPDATE OF client_id, description,
    hash, hint, expires_at ON client_secrets
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_clients_changed();
CREATE TRIGGER redirect_uris_changed AFTER INSERT OR DELETE OR UPDATE ON redirect_uris
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_clients_changed();
