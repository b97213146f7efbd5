DROP TRIGGER clients_inserted ON clients;
DROP TRIGGER clients_deleted ON clients;
DROP TRIGGER clients_updated ON clients;
DROP TRIGGER client_secrets_inserted ON client_secrets;
DROP TRIGGER client_secrets_deleted ON client_secrets;
DROP TRIGGER client_secrets_updated ON client_secrets;
DROP TRIGGER redirect_uris_inserted ON redirect_uris;
DROP TRIGGER redirect_uris_deleted ON redirect_uris;
DROP TRIGGER redirect_uris_updated ON redirect_uris;
DROP FUNCTION portcullis_clients_logged();
DROP FUNCTION portcullis_client_rows_logged();
DROP FUNCTION portcullis_log_client_changes(BIGINT[]);
DELETE FROM client_changes;

CREATE FUNCTION portcullis_clients_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cache_generation SET value = value + 1 WHERE name = 'clients';
    RETURN NULL;
END
$$;
CREATE TRIGGER clients_changed AFTER INSERT OR DELETE OR UPDATE OF client_id, name, description,
    logo_url, public, enabled, allowed_scopes, allowed_grant_types, access_token_ttl,
    refresh_token_ttl, ip_allowlist, rate_limit_per_minute, token_endpoint_auth_method, jwks,
    hmac_key, loopback_any_port ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_clients_changed();
CREATE TRIGGER client_secrets_changed AFTER INSERT OR DELETE OR UPDATE OF client_id, description,
    hash, hint, expires_at ON client_secrets
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_clients_changed();
CREATE TRIGGER redirect_uris_changed AFTER INSERT OR DELETE OR UPDATE ON redirect_uris
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_clients_changed();
