-- Locks instances for a transition, in id order so that concurrent batches never deadlock.
-- $2: the buckets of the ids (longrun::bucket::buckets_of), so that only their partitions are read.
SELECT instance_id, process_id, version, state, seq, variables
FROM __schema__.instances
WHERE bucket = ANY ($2::smallint[]) AND instance_id = ANY ($1::uuid[])
ORDER BY instance_id
FOR UPDATE
