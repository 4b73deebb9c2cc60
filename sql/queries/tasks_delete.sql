-- Removes tasks that are no longer open (completed, or withdrawn with their step or
-- instance); their candidate rows go with them (ON DELETE CASCADE).
-- $2: the bucket of each id (longrun::bucket::buckets_of): each row is found by one probe of
-- the key (bucket, id), and the partitioned layout reads only the partitions of those buckets.
DELETE FROM __schema__.tasks
WHERE (bucket, task_id) IN (SELECT * FROM unnest($2::smallint[], $1::uuid[]))
