-- longrun migration 0014: timer starts.
--
-- Purpose: a process may start instances by itself on a timer (a cycle, a date, a duration
-- after its deploy). Each process with one has a row here, for the latest version deployed:
-- when the next firing is due and how many have fired. Engines take due rows FOR UPDATE SKIP
-- LOCKED and, in one transaction, start the instance and move the row to the next firing, so
-- each firing starts exactly one instance however many engines run. Deploying a version
-- without a timer start removes the row; one with another timer replaces it.
-- Locks: creates a new table only.

CREATE TABLE __schema__.start_timers (
    process_id text        PRIMARY KEY,
    version    integer     NOT NULL,
    due_at     timestamptz NOT NULL,
    fired      integer     NOT NULL DEFAULT 0 CHECK (fired >= 0),
    FOREIGN KEY (process_id, version) REFERENCES __schema__.definitions (process_id, version)
);
COMMENT ON TABLE __schema__.start_timers IS
    'The timer start of each process that has one (its latest version): when it fires next. Moved in the transaction that starts the instance of each firing.';
COMMENT ON COLUMN __schema__.start_timers.process_id IS 'The process.';
COMMENT ON COLUMN __schema__.start_timers.version IS 'The version whose timer this is (the latest deployed); instances start on it.';
COMMENT ON COLUMN __schema__.start_timers.due_at IS 'When the next instance starts (engine clock).';
COMMENT ON COLUMN __schema__.start_timers.fired IS 'Firings so far of this version''s schedule.';
CREATE INDEX start_timers_due_idx ON __schema__.start_timers (due_at);

GRANT SELECT, INSERT, UPDATE, DELETE ON __schema__.start_timers TO __runtime_role__;
