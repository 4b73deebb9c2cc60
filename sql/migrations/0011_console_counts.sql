-- longrun migration 0011: counters for the operations console, kept by the activity projection.
--
-- Purpose: the console shows, per process version, how many instances run, completed, failed
-- or were cancelled, and per step how many executions wait there, have an open incident,
-- completed or were cancelled. Counting rows of `instances` or `activity` on every page view
-- would grow with the history; these counters are moved by the activity projection in the same
-- transaction as the rows it writes (so they always equal the aggregate of `activity`, and of
-- the instances the projection has read), and cost nothing on the transitions themselves.
-- The activity projection is reset here so that its rows and the counters are rebuilt together
-- from the first event by the engines (at tens of thousands of events per second); until that
-- finishes the activity report and the counters are behind (`longrun projections` shows how
-- far).
-- Locks: ACCESS EXCLUSIVE on activity for a moment (a column with a constant default rewrites
-- nothing); deletes the activity rows.

ALTER TABLE __schema__.activity ADD COLUMN incident boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN __schema__.activity.incident IS
    'True while the execution has an open incident (its attempts are used up and it waits for an operator).';

CREATE TABLE __schema__.step_counts (
    process_id text    NOT NULL,
    version    integer NOT NULL,
    step_id    text    NOT NULL,
    waiting    bigint  NOT NULL DEFAULT 0,
    incidents  bigint  NOT NULL DEFAULT 0,
    completed  bigint  NOT NULL DEFAULT 0,
    cancelled  bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (process_id, version, step_id)
);
COMMENT ON TABLE __schema__.step_counts IS
    'Per step of each process version, counters of the activity history (moved by the activity projection with its rows): what the console''s diagram badges show.';
COMMENT ON COLUMN __schema__.step_counts.process_id IS 'The process.';
COMMENT ON COLUMN __schema__.step_counts.version IS 'The definition version.';
COMMENT ON COLUMN __schema__.step_counts.step_id IS 'The step.';
COMMENT ON COLUMN __schema__.step_counts.waiting IS 'Executions open at the step: instances waiting there (for a job, message, timer, child or an operator).';
COMMENT ON COLUMN __schema__.step_counts.incidents IS 'Of those, executions with an open incident.';
COMMENT ON COLUMN __schema__.step_counts.completed IS 'Executions that ended other than by the instance being cancelled or failing (a compensation''s handler run at the step counts here too).';
COMMENT ON COLUMN __schema__.step_counts.cancelled IS 'Executions ended because the instance was cancelled (its wait withdrawn) or failed.';

CREATE TABLE __schema__.version_counts (
    process_id text    NOT NULL,
    version    integer NOT NULL,
    running    bigint  NOT NULL DEFAULT 0,
    completed  bigint  NOT NULL DEFAULT 0,
    failed     bigint  NOT NULL DEFAULT 0,
    cancelled  bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (process_id, version)
);
COMMENT ON TABLE __schema__.version_counts IS
    'Per process version, instances by status as the activity projection has read them (a migrated instance counts under its new version).';
COMMENT ON COLUMN __schema__.version_counts.process_id IS 'The process.';
COMMENT ON COLUMN __schema__.version_counts.version IS 'The definition version.';
COMMENT ON COLUMN __schema__.version_counts.running IS 'Instances started and not ended (paused ones and those with incidents included).';
COMMENT ON COLUMN __schema__.version_counts.completed IS 'Instances that completed.';
COMMENT ON COLUMN __schema__.version_counts.failed IS 'Instances that failed.';
COMMENT ON COLUMN __schema__.version_counts.cancelled IS 'Instances that were cancelled.';

CREATE VIEW __schema__.report_step_counts AS
SELECT process_id, version, step_id, waiting, incidents, completed, cancelled
FROM __schema__.step_counts
WHERE (waiting, incidents, completed, cancelled) <> (0, 0, 0, 0);
COMMENT ON VIEW __schema__.report_step_counts IS
    'Per step of each process version: executions waiting there, with an open incident, completed and cancelled (the console''s badges; as current as the activity projection).';

CREATE VIEW __schema__.report_version_counts AS
SELECT process_id, version, running, completed, failed, cancelled
FROM __schema__.version_counts;
COMMENT ON VIEW __schema__.report_version_counts IS
    'Per process version: instances running, completed, failed and cancelled, from counters (no count over instances; as current as the activity projection).';

GRANT SELECT ON __schema__.report_step_counts, __schema__.report_version_counts
    TO __reporting_role__;

-- Rebuild the activity projection with its counters from the first event.
DELETE FROM __schema__.activity;
DELETE FROM __schema__.projection_progress WHERE name = 'activity';
UPDATE __schema__.projection_checkpoints
SET last_xid = '0', last_instance = '00000000-0000-0000-0000-000000000000', last_seq = 0
WHERE name = 'activity';
UPDATE __schema__.projections SET events = 0, rebuilt_at = now() WHERE name = 'activity';

-- The console's status filters (`failed`, `cancelled`, ... newest first) read this index rather
-- than walk every instance by id. Status changes once per instance, in an update that is not
-- HOT anyway (instances_process_status_idx has it), so the transitions in between stay HOT.
CREATE INDEX instances_status_id_idx ON __schema__.instances (status, instance_id);

-- The console's incident list and its "incident" filter read the open executions with an
-- incident through this index, not by scanning the running instances' state.
CREATE INDEX activity_incident_idx ON __schema__.activity (instance_id)
    WHERE incident AND ended_at IS NULL;
