DROP TRIGGER clients_changed ON clients;
CREATE TRIGGER clients_changed AFTER INSERT OR DELETE OR UPDATE OF client_id, name, description,
    logo_url, public, enabled, allowed_scopes, allowed_grant_types, access_token_ttl,
    refresh_token_ttl ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_clients_changed();
ALTER TABLE clients DROP COLUMN rate_limit_per_minute;
ALTER TABLE clients DROP COLUMN ip_allowlist;
