-- longrun migration 0012: a business key unique among a process's running instances.
--
-- Purpose: a process may declare its business key unique among running instances
-- (`unique_business_key` in the definition): a second start with the key of a running instance
-- returns that instance or is refused, as the definition says. The start looks the key up
-- first; this index makes the rule hold when two starts race (the later one fails on it and is
-- looked up again). Instances of processes without the rule are not in the index.
-- Locks: ACCESS EXCLUSIVE on instances for a moment (a column with a constant default rewrites
-- nothing); the index build reads instances under SHARE (the partial index holds no rows yet).

ALTER TABLE __schema__.instances ADD COLUMN key_unique boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN __schema__.instances.key_unique IS
    'True when the process version declares its business key unique among running instances: the row is then in instances_running_key_unique while it runs.';

CREATE UNIQUE INDEX instances_running_key_unique
    ON __schema__.instances (bucket, process_id, business_key)
    WHERE status = 'running' AND key_unique;
