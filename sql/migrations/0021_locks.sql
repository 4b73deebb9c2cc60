-- longrun migration 0021: lock rows instead of advisory locks.
--
-- Purpose: two things must happen one at a time: the delivery of a message and the start of a
-- wait for it under one (message name, key), so that a message arriving while an instance
-- starts waiting is neither missed nor taken twice; and the deploys of one process, so that
-- versions are numbered without gaps or clashes. Each is serialized by the row lock of one row
-- of `locks`, in the bucket of the correlation key (or of the process id), which the
-- transaction inserts or updates and so holds until it ends. A row lock holds on every node of
-- a distributed database; an advisory lock only on the node that took it (docs/SCALING.md).
-- Rows nobody holds may be deleted at any time; retention removes those untouched for the
-- deduplication window.
-- Locks: creates a new table only; takes no lock on existing tables.

CREATE TABLE __schema__.locks (
    bucket   smallint    NOT NULL CHECK (bucket BETWEEN 0 AND 255),
    lock_key text        NOT NULL,
    taken_at timestamptz NOT NULL,
    PRIMARY KEY (bucket, lock_key)
) __bucketed__;
-- A take rewrites its row only once an hour (else it only locks it), in place (a heap-only
-- update): room on the page keeps it there.
SELECT __schema__.bucket_partitions('__schema__.locks', 'fillfactor = 50');
COMMENT ON TABLE __schema__.locks IS
    'One row per thing taken one transaction at a time (a correlation: message name and key; the deploys of a process). A transaction takes it by inserting or updating its row and holds it until it ends.';
COMMENT ON COLUMN __schema__.locks.bucket IS 'The bucket of the correlation key (bucket_of_key), or of the process id for deploys.';
COMMENT ON COLUMN __schema__.locks.lock_key IS 'What it serializes: correlate<US>message name<US>key, or definition<US>process id (<US> is the unit separator, U+001F).';
COMMENT ON COLUMN __schema__.locks.taken_at IS 'When it was taken (database clock), to within an hour: a take rewrites it only when it is older. Retention deletes rows untouched for the deduplication window.';

CREATE INDEX locks_taken_idx ON __schema__.locks (taken_at);
