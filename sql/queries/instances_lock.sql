-- Locks instances for a transition, in id order so that concurrent batches never deadlock.
-- $2: the bucket of each id (longrun::bucket::buckets_of): each row is found by one probe of
-- the key (bucket, id), and the partitioned layout reads only the partitions of those buckets.
SELECT instance_id, process_id, version, state, seq, variables
FROM __schema__.instances
WHERE (bucket, instance_id) IN (SELECT * FROM unnest($2::smallint[], $1::uuid[]))
ORDER BY instance_id
FOR UPDATE
