-- Removes the candidate rows of tasks about to be written again (their lists or due dates
-- may have changed).
-- $2: the buckets of the ids (longrun::bucket::buckets_of), so that only their partitions are read.
DELETE FROM __schema__.task_candidates WHERE bucket = ANY ($2::smallint[]) AND task_id = ANY ($1::uuid[])
