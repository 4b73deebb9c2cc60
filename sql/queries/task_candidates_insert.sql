-- Writes who tasks are offered to, one row per (task, user or group), with the task's order
-- keys copied from its row.
-- $4: the bucket of each id (longrun::bucket::buckets_of): each row is found by one probe of
-- the key (bucket, id), and the partitioned layout reads only the partitions of those buckets.
INSERT INTO __schema__.task_candidates (bucket, kind, name, due_key, created_at, task_id)
SELECT DISTINCT t.bucket, c.kind, c.name, t.due_key, t.created_at, t.task_id
FROM unnest($1::text[], $2::text[], $3::uuid[], $4::smallint[]) AS c(kind, name, task_id, bucket)
JOIN __schema__.tasks t ON t.bucket = c.bucket AND t.task_id = c.task_id
