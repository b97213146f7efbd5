DROP TABLE server_secrets;
DROP TABLE consents;
DROP TABLE revoked_tokens;
DROP TABLE refresh_tokens;
DROP TABLE grants;
