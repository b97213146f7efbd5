-- RFC 8252 7.3: when set, a registered loopback redirect URI (http://127.0.0.1/..., http://[::1]/...)
-- matches the same URI with any port. Off for every existing client.
ALTER TABLE clients ADD COLUMN loopback_any_port BOOLEAN NOT NULL DEFAULT FALSE;
