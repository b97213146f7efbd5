-- The admin area: an audit log, and indexes for sorting the clients list in the database.
CREATE TABLE audit_events (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    client_id TEXT,
    target TEXT NOT NULL,
    details TEXT NOT NULL,
    remote_addr TEXT NOT NULL
);
CREATE INDEX audit_events_at_idx ON audit_events (at);
CREATE INDEX audit_events_client_idx ON audit_events (client_id, at);
CREATE INDEX audit_events_actor_idx ON audit_events (actor, at);

CREATE INDEX clients_last_used_at_idx ON clients (last_used_at);

-- Tokens issued per client per day (day = days since the Unix epoch, UTC), for the usage
-- chart. Counted in memory and added here in batches, never written per token request.
CREATE TABLE token_usage (
    client_id BIGINT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    day BIGINT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (client_id, day)
);
