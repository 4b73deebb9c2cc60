-- Writes who tasks are offered to, one row per (task, user or group), with the task's order
-- keys copied from its row.
-- The `= ANY` repeats the join key so that the plan reads the batch's rows through the index
-- however small the table was when the plan was cached (a plan made on an empty table would
-- otherwise scan the whole table on every call, as it grows).
-- $4: the buckets of the ids (longrun::bucket::buckets_of), so that only their partitions are read.
INSERT INTO __schema__.task_candidates (bucket, kind, name, due_key, created_at, task_id)
SELECT DISTINCT t.bucket, c.kind, c.name, t.due_key, t.created_at, t.task_id
FROM unnest($1::text[], $2::text[], $3::uuid[]) AS c(kind, name, task_id)
JOIN __schema__.tasks t ON t.task_id = c.task_id
WHERE t.bucket = ANY ($4::smallint[]) AND t.task_id = ANY ($3::uuid[])
