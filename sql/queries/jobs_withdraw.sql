-- Withdraws jobs whose wait ended otherwise (a timeout or an interrupting timer). A handler
-- still running finds no job when it finishes, and its result is dropped.
-- $2: the buckets of the ids (longrun::bucket::buckets_of), so that only their partitions are read.
DELETE FROM __schema__.jobs WHERE bucket = ANY ($2::smallint[]) AND job_id = ANY ($1::uuid[])
