DROP TRIGGER clients_changed ON clients;
CREATE TRIGGER clients_changed AFTER INSERT OR DELETE OR UPDATE OF client_id, name, description,
    logo_url, public, enabled, allowed_scopes, allowed_grant_types, access_token_ttl,
    refresh_token_ttl, ip_allowlist, rate_limit_per_minute ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_clients_changed();
DROP TABLE client_assertion_jtis;
ALTER TABLE clients DROP COLUMN hmac_key;
ALTER TABLE clients DROP COLUMN jwks;
ALTER TABLE clients DROP COLUMN token_endpoint_auth_method;
