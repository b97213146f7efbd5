DROP TABLE signing_keys;
DROP TABLE users;
DROP TABLE client_secrets;
DROP TABLE redirect_uris;
DROP TABLE clients;
