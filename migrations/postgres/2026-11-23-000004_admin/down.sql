DROP TABLE token_usage;
DROP INDEX clients_last_used_at_idx;
DROP TABLE audit_events;
