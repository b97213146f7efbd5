DROP TRIGGER signing_keys_changed ON signing_keys;
DROP FUNCTION portcullis_keys_changed();
DELETE FROM cache_generation WHERE name = 'signing_keys';
ALTER TABLE signing_keys DROP COLUMN activates_at;
