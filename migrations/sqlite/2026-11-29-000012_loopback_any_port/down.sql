ALTER TABLE clients DROP COLUMN loopback_any_port;
