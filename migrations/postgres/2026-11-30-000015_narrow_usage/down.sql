ALTER TABLE client_secrets ADD COLUMN last_used_at BIGINT;
UPDATE client_secrets SET last_used_at =
    (SELECT at FROM secret_last_used WHERE secret_last_used.secret_id = client_secrets.id);
ALTER TABLE clients ADD COLUMN last_used_at BIGINT;
UPDATE clients SET last_used_at =
    (SELECT at FROM client_last_used WHERE client_last_used.client_id = clients.id);
CREATE INDEX clients_last_used_at_idx ON clients (last_used_at);
DROP TABLE secret_last_used;
DROP TABLE client_last_used;
