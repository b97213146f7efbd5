-- Which client each change was to (issue 13). Every change to a client, a secret or a
-- redirect URI still moves `cache_generation`, now by one per row changed (the triggers were
-- per statement), and leaves a row here under the generation it moved to, naming the client's
-- primary key. An instance that polls the generation reads the rows since its last poll and
-- drops only those clients from its cache; a gap in the rows (pruned: only the latest are
-- kept, see client::store::prune_changes) makes it drop every client, as before. A secret
-- moved to another client names both.
CREATE TABLE client_changes (
    generation BIGINT PRIMARY KEY,
    client_pk BIGINT NOT NULL
);

CREATE FUNCTION portcullis_log_client_change(changed_pk BIGINT) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    moved_to BIGINT;
BEGIN
    -- The row lock taken here is held to the commit: changes are numbered in commit order.
    UPDATE cache_generation SET value = value + 1 WHERE name = 'clients'
        RETURNING value INTO moved_to;
    INSERT INTO client_changes (generation, client_pk) VALUES (moved_to, changed_pk);
END
$$;

CREATE OR REPLACE FUNCTION portcullis_clients_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'clients' THEN
        IF TG_OP = 'DELETE' THEN
            PERFORM portcullis_log_client_change(OLD.id);
        ELSE
            PERFORM portcullis_log_client_change(NEW.id);
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM portcullis_log_client_change(OLD.client_id);
    ELSE
        PERFORM portcullis_log_client_change(NEW.client_id);
        IF TG_OP = 'UPDATE' AND OLD.client_id <> NEW.client_id THEN
            PERFORM portcullis_log_client_change(OLD.client_id);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER clients_changed ON clients;
CREATE TRIGGER clients_changed AFTER INSERT OR DELETE OR UPDATE OF client_id, name, description,
    logo_url, public, enabled, allowed_scopes, allowed_grant_types, access_token_ttl,
    refresh_token_ttl, ip_allowlist, rate_limit_per_minute, token_endpoint_auth_method, jwks,
    hmac_key, loopback_any_port ON clients
    FOR EACH ROW EXECUTE FUNCTION portcullis_clients_changed();
DROP TRIGGER client_secrets_changed ON client_secrets;
CREATE TRIGGER client_secrets_changed AFTER INSERT OR DELETE OR UPDATE OF client_id, description,
    hash, hint, expires_at ON client_secrets
    FOR EACH ROW EXECUTE FUNCTION portcullis_clients_changed();
DROP TRIGGER redirect_uris_changed ON redirect_uris;
CREATE TRIGGER redirect_uris_changed AFTER INSERT OR DELETE OR UPDATE ON redirect_uris
    FOR EACH ROW EXECUTE FUNCTION portcullis_clients_changed();
