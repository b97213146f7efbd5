-- Last-used times move out of the wide `clients` and `client_secrets` rows into narrow tables
-- of their own. The usage flush (src/usage.rs) writes one time per client and per secret used
-- in the last interval: with a million clients in use that is tens of thousands of random
-- rows every few seconds. Updating an indexed column of a wide row is never a HOT update: it
-- writes a new copy of the row and an entry in every index of `clients`. A row of two
-- integers is small, and its one index is the primary key.
-- Neither table decides anything: they are shown to admins, and no cache reads them.
CREATE TABLE client_last_used (
    client_id BIGINT PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
    at BIGINT NOT NULL
);
INSERT INTO client_last_used (client_id, at)
    SELECT id, last_used_at FROM clients WHERE last_used_at IS NOT NULL;

CREATE TABLE secret_last_used (
    secret_id BIGINT PRIMARY KEY REFERENCES client_secrets (id) ON DELETE CASCADE,
    at BIGINT NOT NULL
);
INSERT INTO secret_last_used (secret_id, at)
    SELECT id, last_used_at FROM client_secrets WHERE last_used_at IS NOT NULL;

DROP INDEX clients_last_used_at_idx;
ALTER TABLE clients DROP COLUMN last_used_at;
ALTER TABLE client_secrets DROP COLUMN last_used_at;
