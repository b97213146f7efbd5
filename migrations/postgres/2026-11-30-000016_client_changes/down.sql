DROP TABLE client_changes;
