-- longrun migration 0022: engines share the buckets.
--
-- Purpose: each running engine keeps a row here, renewed while it runs (a lease: it counts
-- only until `expires_at`). Engines that run the same handlers divide the 256 buckets among
-- themselves by rendezvous hashing over the live rows, and each claims jobs and fires timers
-- only in its own buckets, one bucket per claim. An engine that stops deletes its row; one that
-- dies stops counting when its row expires, and the others take its buckets over.
-- Locks: creates a new table only; takes no lock on existing tables.

CREATE TABLE __schema__.engines (
    owner      text        PRIMARY KEY,
    handlers   text        NOT NULL,
    started_at timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
COMMENT ON TABLE __schema__.engines IS
    'Running engines and their leases (database clock): engines with the same handlers share the buckets among the rows not yet expired.';
COMMENT ON COLUMN __schema__.engines.owner IS 'The engine''s name (its lease owner in jobs.lease_owner).';
COMMENT ON COLUMN __schema__.engines.handlers IS 'The handlers it runs, sorted, comma-separated: engines with the same list share the buckets.';
COMMENT ON COLUMN __schema__.engines.started_at IS 'When it first renewed its lease.';
COMMENT ON COLUMN __schema__.engines.seen_at IS 'When it last renewed its lease.';
COMMENT ON COLUMN __schema__.engines.expires_at IS 'Until when it counts as running unless it renews.';
