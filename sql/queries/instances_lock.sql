-- Locks instances for a transition, in id order so that concurrent batches never deadlock.
-- $2: the bucket of each id (longrun::bucket::buckets_of): each row is found by one probe of
-- the key (bucket, id), and the partitioned layout reads only the partitions of those buckets.
-- A batch runs it once per group of buckets (Store::split_by_group): it locks in one partition.
-- $3: the group's buckets, where a distributed database routes by them; NULL where all buckets
-- are one group (the plain layout: planned for the values, the condition is gone; named
-- always, it would cost PostgreSQL about 1 ms per 100 ids, measured).
SELECT instance_id, process_id, version, state, seq, variables
FROM __schema__.instances
WHERE (bucket, instance_id) IN (SELECT * FROM unnest($2::smallint[], $1::uuid[]))
  AND ($3::smallint[] IS NULL OR bucket = ANY ($3::smallint[]))
ORDER BY instance_id
FOR UPDATE
