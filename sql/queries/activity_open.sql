-- The activity rows still open (begun, not ended) for some instances.
-- $2: the bucket of each id (longrun::bucket::buckets_of): each row is found by one probe of
-- the key (bucket, id), and the partitioned layout reads only the partitions of those buckets.
SELECT instance_id, seq, process_id, version, step_id, kind, started_at, attempts, incident,
       claimed_at
FROM __schema__.activity
WHERE (bucket, instance_id) IN (SELECT * FROM unnest($2::smallint[], $1::uuid[]))
  AND ended_at IS NULL
