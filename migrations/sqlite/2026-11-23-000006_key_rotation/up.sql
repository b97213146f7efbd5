-- Signing-key rotation: a new key is published at once and signs from activates_at on, so
-- that every instance and every resource server has it in the JWKS before tokens use it.
ALTER TABLE signing_keys ADD COLUMN activates_at BIGINT NOT NULL DEFAULT 0;

-- Instances reload their keys when this counter moves (polled like the client cache).
INSERT INTO cache_generation (name, value) VALUES ('signing_keys', 0);
CREATE TRIGGER signing_keys_inserted AFTER INSERT ON signing_keys
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'signing_keys'; END;
CREATE TRIGGER signing_keys_updated AFTER UPDATE ON signing_keys
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'signing_keys'; END;
CREATE TRIGGER signing_keys_deleted AFTER DELETE ON signing_keys
BEGIN UPDATE cache_generation SET value = value + 1 WHERE name = 'signing_keys'; END;
