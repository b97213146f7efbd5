-- Last-used times move out of the wide `clients` and `client_secrets` rows into narrow tables
-- of their own. The usage flush (src/usage.rs) writes one time per client and per secret used
-- in the last interval: with a million clients in use that is tens of thousands of random
-- rows every few seconds. Rewriting a wide row (and its entry in clients_last_used_at_idx)
-- dirties a page per client; a row of two integers shares its page with a few hundred others.
-- Neither table decides anything: they are shown to admins, and no cache reads them.
CREATE TABLE client_last_used (
    client_id INTEGER PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    at BIGINT NOT NULL
);
INSERT INTO client_last_used (client_id, at)
    SELECT id, last_used_at FROM clients WHERE last_used_at IS NOT NULL;

CREATE TABLE secret_last_used (
    secret_id INTEGER PRIMARY KEY REFERENCES client_secrets (id) ON DELETE CASCADE,
    at BIGINT NOT NULL
);
INSERT INTO secret_last_used (secret_id, at)
    SELECT id, last_used_at FROM client_secrets WHERE last_used_at IS NOT NULL;

DROP INDEX clients_last_used_at_idx;
ALTER TABLE clients DROP COLUMN last_used_at;
ALTER TABLE client_secrets DROP COLUMN last_used_at;

-- The daily token counts, keyed by (client, day) alone: one b-tree to write instead of a
-- table and its primary-key index.
CREATE TABLE token_usage_by_key (
    client_id BIGINT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    day BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (client_id, day)
) WITHOUT ROWID;
INSERT INTO token_usage_by_key (client_id, day, count)
    SELECT client_id, day, count FROM token_usage;
DROP TABLE token_usage;
ALTER TABLE token_usage_by_key RENAME TO token_usage;
