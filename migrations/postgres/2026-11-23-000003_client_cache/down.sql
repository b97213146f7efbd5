DROP TRIGGER redirect_uris_changed ON redirect_uris;
DROP TRIGGER client_secrets_changed ON client_secrets;
DROP TRIGGER clients_changed ON clients;
DROP FUNCTION portcullis_clients_changed();
DROP TABLE cache_generation;
