-- longrun migration 0015: user tasks and the task list.
--
-- Purpose: a user task step opens a task for people (an assignee, candidate users, candidate
-- groups) and the instance waits until someone completes it. Each open task is a row here,
-- written in the transaction of the transition that opens or changes it (claim, release,
-- assignment, dates, priority) and deleted in the one that ends it (completed, or withdrawn
-- with its step or instance), like jobs and subscriptions. What happened to a task, who did
-- it and when, is in the instance's events (TaskCreated, TaskClaimed, ..., TaskCompleted).
-- `task_candidates` holds one row per (task, candidate user or group), so that a group's list
-- is read in order from an index however many tasks are open. Lists are ordered by due date
-- (tasks without one last), then creation, then id: `due_key` is the due date or 'infinity'.
-- The activity projection records a user task's first claim (`activity.claimed_at`), so that
-- `report_task_durations` gives the time to claim and the time to complete per step.
-- Locks: creates new tables and views; adds a nullable column to activity (ACCESS EXCLUSIVE
-- for a moment, no rewrite).

CREATE TABLE __schema__.tasks (
    bucket       smallint    NOT NULL CHECK (bucket BETWEEN 0 AND 255),
    task_id          uuid        NOT NULL,
    instance_id      uuid        NOT NULL,
    process_id       text        NOT NULL,
    step_id          text        NOT NULL,
    business_key     text        NOT NULL,
    assignee         text,
    candidate_users  text[]      NOT NULL DEFAULT '{}',
    candidate_groups text[]      NOT NULL DEFAULT '{}',
    priority         smallint    NOT NULL CHECK (priority BETWEEN 0 AND 100),
    due_at           timestamptz,
    follow_up_at     timestamptz,
    form_key         text,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    due_key          timestamptz NOT NULL GENERATED ALWAYS AS (coalesce(due_at, 'infinity'::timestamptz)) STORED,
    PRIMARY KEY (bucket, task_id)
) __bucketed__;
SELECT __schema__.bucket_partitions('__schema__.tasks');
COMMENT ON TABLE __schema__.tasks IS
    'Open user tasks, one row per task: written and deleted with the transitions of their instance. Their history is in the instance''s events.';
COMMENT ON COLUMN __schema__.tasks.bucket IS 'bucket_of(task_id): its instance''s bucket, since longrun derives the id in it. Leads every key.';
COMMENT ON COLUMN __schema__.tasks.task_id IS 'The task id.';
COMMENT ON COLUMN __schema__.tasks.instance_id IS 'The instance that waits for it.';
COMMENT ON COLUMN __schema__.tasks.process_id IS 'The instance''s process.';
COMMENT ON COLUMN __schema__.tasks.step_id IS 'The user task step.';
COMMENT ON COLUMN __schema__.tasks.business_key IS 'The instance''s business key.';
COMMENT ON COLUMN __schema__.tasks.assignee IS 'Who holds it; NULL while it waits for a claim.';
COMMENT ON COLUMN __schema__.tasks.candidate_users IS 'Users who may claim it.';
COMMENT ON COLUMN __schema__.tasks.candidate_groups IS 'Groups whose members may claim it.';
COMMENT ON COLUMN __schema__.tasks.priority IS 'From 0 to 100 (50 unless the step says otherwise).';
COMMENT ON COLUMN __schema__.tasks.due_at IS 'When it is due (engine clock); NULL: no due date.';
COMMENT ON COLUMN __schema__.tasks.follow_up_at IS 'When someone should look at it again.';
COMMENT ON COLUMN __schema__.tasks.form_key IS 'The form reference the step declares.';
COMMENT ON COLUMN __schema__.tasks.created_at IS 'When it was opened (engine clock).';
COMMENT ON COLUMN __schema__.tasks.updated_at IS 'When it last changed (engine clock).';
COMMENT ON COLUMN __schema__.tasks.due_key IS 'due_at, or infinity without one: the first key of every list''s order.';
CREATE INDEX tasks_list_idx ON __schema__.tasks (due_key, created_at, task_id);
CREATE INDEX tasks_assignee_idx ON __schema__.tasks (assignee, due_key, created_at, task_id)
    WHERE assignee IS NOT NULL;
CREATE INDEX tasks_instance_idx ON __schema__.tasks (instance_id);

CREATE TABLE __schema__.task_candidates (
    bucket       smallint    NOT NULL CHECK (bucket BETWEEN 0 AND 255),
    kind       text        NOT NULL CHECK (kind IN ('user', 'group')),
    name       text        NOT NULL,
    due_key    timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    task_id    uuid        NOT NULL,
    PRIMARY KEY (bucket, task_id, kind, name),
    FOREIGN KEY (bucket, task_id) REFERENCES __schema__.tasks (bucket, task_id) ON DELETE CASCADE
) __bucketed__;
SELECT __schema__.bucket_partitions('__schema__.task_candidates');
COMMENT ON TABLE __schema__.task_candidates IS
    'Who an open task is offered to: one row per candidate user or group, in list order, so a group''s task list is an index range.';
COMMENT ON COLUMN __schema__.task_candidates.bucket IS 'The bucket of its task.';
COMMENT ON COLUMN __schema__.task_candidates.kind IS 'user or group.';
COMMENT ON COLUMN __schema__.task_candidates.name IS 'The user or group name.';
COMMENT ON COLUMN __schema__.task_candidates.due_key IS 'The task''s due_key (copied, for the order).';
COMMENT ON COLUMN __schema__.task_candidates.created_at IS 'The task''s created_at (copied, for the order).';
COMMENT ON COLUMN __schema__.task_candidates.task_id IS 'The task.';
-- The task lists: a user's or group's open tasks in list order are an index range.
CREATE INDEX task_candidates_list_idx ON __schema__.task_candidates (kind, name, due_key, created_at, task_id);

CREATE VIEW __schema__.report_tasks AS
SELECT process_id, step_id,
       coalesce(g.name, '') AS candidate_group,
       count(*) AS open,
       count(*) FILTER (WHERE t.assignee IS NULL) AS unclaimed,
       count(*) FILTER (WHERE t.due_at < now()) AS overdue,
       min(t.created_at) AS oldest_created_at,
       (extract(epoch FROM now() - min(t.created_at)))::bigint AS oldest_age_s
FROM __schema__.tasks t
LEFT JOIN LATERAL unnest(CASE WHEN cardinality(t.candidate_groups) = 0 THEN ARRAY[NULL::text]
                              ELSE t.candidate_groups END) AS g(name) ON true
GROUP BY process_id, step_id, g.name;
COMMENT ON VIEW __schema__.report_tasks IS
    'Open user tasks per process, step and candidate group (a task offered to two groups counts in each; '''' for none): how many, unclaimed, overdue (due before now, on the database clock), and the oldest.';

ALTER TABLE __schema__.activity ADD COLUMN claimed_at timestamptz;
COMMENT ON COLUMN __schema__.activity.claimed_at IS 'For a user task: when it was first claimed.';
COMMENT ON COLUMN __schema__.activity.kind IS 'job, receive, timer, event_gateway, call, user_task (executions that wait) or send, exclusive, parallel, join, end (instant ones).';

CREATE VIEW __schema__.report_task_durations AS
SELECT process_id, version, step_id,
       count(*) FILTER (WHERE outcome LIKE 'completed by %') AS completed,
       count(*) FILTER (WHERE ended_at IS NULL) AS open,
       (percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM claimed_at - started_at)))::numeric(14, 1) AS to_claim_p50_s,
       (percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM claimed_at - started_at)))::numeric(14, 1) AS to_claim_p95_s,
       (percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ended_at - started_at))
           FILTER (WHERE outcome LIKE 'completed by %'))::numeric(14, 1) AS to_complete_p50_s,
       (percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM ended_at - started_at))
           FILTER (WHERE outcome LIKE 'completed by %'))::numeric(14, 1) AS to_complete_p95_s
FROM __schema__.activity
WHERE kind = 'user_task'
GROUP BY process_id, version, step_id;
COMMENT ON VIEW __schema__.report_task_durations IS
    'User tasks per process version and step, from the activity projection: completed and open, and seconds from creation to the first claim and to completion (p50, p95).';

GRANT SELECT, INSERT, UPDATE, DELETE ON __schema__.tasks, __schema__.task_candidates TO __runtime_role__;
GRANT SELECT ON __schema__.report_tasks, __schema__.report_task_durations TO __reporting_role__;
