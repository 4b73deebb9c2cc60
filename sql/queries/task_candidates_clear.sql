-- Removes the candidate rows of tasks about to be written again (their lists or due dates
-- may have changed).
-- $2: the bucket of each id (longrun::bucket::buckets_of): each row is found by one probe of
-- the key (bucket, id), and the partitioned layout reads only the partitions of those buckets.
DELETE FROM __schema__.task_candidates
WHERE (bucket, task_id) IN (SELECT * FROM unnest($2::smallint[], $1::uuid[]))
