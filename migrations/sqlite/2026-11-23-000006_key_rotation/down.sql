DROP TRIGGER signing_keys_deleted;
DROP TRIGGER signing_keys_updated;
DROP TRIGGER signing_keys_inserted;
DELETE FROM cache_generation WHERE name = 'signing_keys';
ALTER TABLE signing_keys DROP COLUMN activates_at;
