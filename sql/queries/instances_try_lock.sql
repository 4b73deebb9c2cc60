-- Locks the instances of due timers, skipping those another engine holds right now (they are
-- being fired or moved by it); in id order.
-- $2: the bucket of each id (longrun::bucket::buckets_of): each row is found by one probe of
-- the key (bucket, id), and the partitioned layout reads only the partitions of those buckets.
-- A batch runs it once per group of buckets (Store::split_by_group), as instances_lock; $3 the
-- group's buckets or NULL, as there.
SELECT instance_id FROM __schema__.instances
WHERE (bucket, instance_id) IN (SELECT * FROM unnest($2::smallint[], $1::uuid[]))
  AND ($3::smallint[] IS NULL OR bucket = ANY ($3::smallint[]))
ORDER BY instance_id
FOR UPDATE SKIP LOCKED
