CREATE OR REPLACE FUNCTION portcullis_clients_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cache_generation SET value = value + 1 WHERE name = 'clients';
    RETURN NULL;
END
$$;

DROP TRIGGER clients_changed ON clients;
CREATE TRIGGER clients_changed AFTER INSERT OR DELETE OR UPDATE OF client_id, name, description,
    logo_url, public, enabled, allowed_scopes, allowed_grant_types, access_token_ttl,
    refresh_token_ttl, ip_allowlist, rate_limit_per_minute, token_endpoint_auth_method, jwks,
    hmac_key, loopback_any_port ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_clients_changed();
DROP TRIGGER client_secrets_changed ON client_secrets;
CREATE TRIGGER client_secrets_changed AFTER INSERT OR DELETE OR UPDATE OF client_id, description,
    hash, hint, expires_at ON client_secrets
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_clients_changed();
DROP TRIGGER redirect_uris_changed ON redirect_uris;
CREATE TRIGGER redirect_uris_changed AFTER INSERT OR DELETE OR UPDATE ON redirect_uris
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_clients_changed();

DROP FUNCTION portcullis_log_client_change(BIGINT);
DROP TABLE client_changes;
