-- The log of which client each change was to (see migrations/sqlite/.../000016). On
-- PostgreSQL it stays empty for now: the counter's triggers stay per statement. Per-row
-- triggers that each update the one counter row make a statement changing many rows
-- quadratic (every update walks the row's chain of versions written by the statement: a
-- 1,000,000-client INSERT ran for over 18 minutes), and a per-statement trigger with
-- transition tables is not done yet. With no rows, every poll finds a gap between its
-- generations and drops the whole cache, as before this migration.
CREATE TABLE client_changes (
    generation BIGINT PRIMARY KEY,
    client_pk BIGINT NOT NULL
);
