-- The activity rows still open (begun, not ended) for some instances.
-- $2: the buckets of the ids (longrun::bucket::buckets_of), so that only their partitions are read.
SELECT instance_id, seq, process_id, version, step_id, kind, started_at, attempts, incident,
       claimed_at
FROM __schema__.activity
WHERE bucket = ANY ($2::smallint[]) AND instance_id = ANY ($1::uuid[]) AND ended_at IS NULL
