-- Which client each change was to, on PostgreSQL too (issue 13; SQLite does it since 000016).
-- Every statement that changes clients, secrets or redirect URIs moves `cache_generation` by
-- the number of clients it changed, n, and leaves n rows in client_changes numbered up to the
-- new generation, one per client's primary key. Instances read the rows since their last poll
-- and drop only those clients from their caches; a gap (pruned rows) drops everything.
--
-- Per statement, with transition tables, not per row: per-row triggers that each update the
-- one counter row made a statement changing many rows quadratic (each update walks the chain
-- of row versions the statement wrote; a 1,000,000-client INSERT ran for over 18 minutes).
-- Here a statement updates the counter once and inserts its log rows in one INSERT. The
-- counter row's lock, held to the commit, orders the generations as the commits.
--
-- Transition tables are not allowed with column lists (UPDATE OF ...): every UPDATE of these
-- tables is logged for every row it updated (the last-used times, which change on every
-- request, left these tables in 000015; what else is updated is what the cache reads, or
-- changes with it).

CREATE FUNCTION portcullis_log_client_changes(pks BIGINT[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT := coalesce(cardinality(pks), 0);
    top BIGINT;
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    UPDATE cache_generation SET value = value + n WHERE name = 'clients' RETURNING value INTO top;
    -- A mass change (an import, say) is not logged client by client: its generations have no
    -- rows, a gap, and every instance drops all of its clients, as it would for that many
    -- changes anyway (past client::cache::MAX_CHANGED); the log is not swollen by rows that the
    -- next prune would delete.
    IF n > 10000 THEN
        RETURN;
    END IF;
    INSERT INTO client_changes (generation, client_pk)
        SELECT top - n + u.o, u.pk FROM unnest(pks) WITH ORDINALITY AS u(pk, o);
END
$$;

-- clients: the changed clients' own keys. (A trigger has only the transition tables its event
-- names: each branch reads those of its event.)
CREATE FUNCTION portcullis_clients_logged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM portcullis_log_client_changes(ARRAY(SELECT DISTINCT id FROM old_rows));
    ELSE
        PERFORM portcullis_log_client_changes(ARRAY(SELECT DISTINCT id FROM new_rows));
    END IF;
    RETURN NULL;
END
$$;

-- client_secrets and redirect_uris: the clients they belong to (both, for a row moved from one
-- client to another).
CREATE FUNCTION portcullis_client_rows_logged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM portcullis_log_client_changes(ARRAY(SELECT DISTINCT client_id FROM new_rows));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM portcullis_log_client_changes(ARRAY(SELECT DISTINCT client_id FROM old_rows));
    ELSE
        PERFORM portcullis_log_client_changes(ARRAY(
            SELECT client_id FROM new_rows UNION SELECT client_id FROM old_rows));
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER clients_changed ON clients;
DROP TRIGGER client_secrets_changed ON client_secrets;
DROP TRIGGER redirect_uris_changed ON redirect_uris;
DROP FUNCTION portcullis_clients_changed();

CREATE TRIGGER clients_inserted AFTER INSERT ON clients
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_clients_logged();
CREATE TRIGGER clients_deleted AFTER DELETE ON clients
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_clients_logged();
CREATE TRIGGER clients_updated AFTER UPDATE ON clients
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_clients_logged();

CREATE TRIGGER client_secrets_inserted AFTER INSERT ON client_secrets
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_client_rows_logged();
CREATE TRIGGER client_secrets_deleted AFTER DELETE ON client_secrets
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_client_rows_logged();
CREATE TRIGGER client_secrets_updated AFTER UPDATE ON client_secrets
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_client_rows_logged();

CREATE TRIGGER redirect_uris_inserted AFTER INSERT ON redirect_uris
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_client_rows_logged();
CREATE TRIGGER redirect_uris_deleted AFTER DELETE ON redirect_uris
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_client_rows_logged();
CREATE TRIGGER redirect_uris_updated AFTER UPDATE ON redirect_uris
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portcullis_client_rows_logged();
