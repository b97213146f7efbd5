CREATE TABLE token_usage_with_rowid (
    client_id BIGINT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    day BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (client_id, day)
);
INSERT INTO token_usage_with_rowid (client_id, day, count)
    SELECT client_id, day, count FROM token_usage;
DROP TABLE token_usage;
ALTER TABLE token_usage_with_rowid RENAME TO token_usage;

ALTER TABLE client_secrets ADD COLUMN last_used_at BIGINT;
UPDATE client_secrets SET last_used_at =
    (SELECT at FROM secret_last_used WHERE secret_last_used.secret_id = client_secrets.id);
ALTER TABLE clients ADD COLUMN last_used_at BIGINT;
UPDATE clients SET last_used_at =
    (SELECT at FROM client_last_used WHERE client_last_used.client_id = clients.id);
CREATE INDEX clients_last_used_at_idx ON clients (last_used_at);
DROP TABLE secret_last_used;
DROP TABLE client_last_used;
