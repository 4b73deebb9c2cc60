-- Removes tasks that are no longer open (completed, or withdrawn with their step or
-- instance); their candidate rows go with them (ON DELETE CASCADE).
-- $2: the buckets of the ids (longrun::bucket::buckets_of), so that only their partitions are read.
DELETE FROM __schema__.tasks WHERE bucket = ANY ($2::smallint[]) AND task_id = ANY ($1::uuid[])
