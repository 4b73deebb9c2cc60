-- One page of the tasks offered to any of some users and groups (kinds $10, names $11: a
-- user's own name and each of their groups), in list order after the cursor, with the same
-- filters as tasks_page.sql. Each (kind, name) is an index range of task_candidates read in
-- order up to the page size, so a page costs the same with a million open tasks as with ten;
-- a task offered to two of them appears once.
WITH picked AS (
    SELECT DISTINCT p.bucket, p.task_id, p.due_key, p.created_at
    FROM unnest($10::text[], $11::text[]) AS w(kind, name)
    CROSS JOIN LATERAL (
        SELECT c.bucket, c.task_id, c.due_key, c.created_at
        FROM __schema__.task_candidates c
        JOIN __schema__.tasks t ON t.bucket = c.bucket AND t.task_id = c.task_id
        WHERE c.kind = w.kind AND c.name = w.name
          AND (c.due_key, c.created_at, c.task_id) > (coalesce($6::timestamptz, 'infinity'), $7::timestamptz, $8::uuid)
          AND ($1::text IS NULL OR t.process_id = $1)
          AND ($2::timestamptz IS NULL OR t.due_at < $2)
          AND ($3::timestamptz IS NULL OR t.follow_up_at < $3)
          AND t.priority >= $4::smallint
          AND (NOT $5::bool OR t.assignee IS NULL)
        ORDER BY c.due_key, c.created_at, c.task_id
        LIMIT $9
    ) p
)
SELECT t.task_id, t.instance_id, t.process_id, t.step_id, t.business_key, t.assignee,
       t.candidate_users, t.candidate_groups, t.priority, t.due_at, t.follow_up_at, t.form_key,
       t.created_at, t.updated_at, t.due_key
FROM picked p JOIN __schema__.tasks t ON t.bucket = p.bucket AND t.task_id = p.task_id
ORDER BY p.due_key, p.created_at, p.task_id
LIMIT $9
