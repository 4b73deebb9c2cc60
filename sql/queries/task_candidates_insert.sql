-- Writes who tasks are offered to, one row per (task, user or group), with the task's order
-- keys copied from its row.
INSERT INTO __schema__.task_candidates (kind, name, due_key, created_at, task_id)
SELECT DISTINCT c.kind, c.name, t.due_key, t.created_at, t.task_id
FROM unnest($1::text[], $2::text[], $3::uuid[]) AS c(kind, name, task_id)
JOIN __schema__.tasks t ON t.task_id = c.task_id
