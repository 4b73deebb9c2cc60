-- Locks the instances of due timers, skipping those another engine holds right now (they are
-- being fired or moved by it); in id order.
-- $2: the buckets of the ids (longrun::bucket::buckets_of), so that only their partitions are read.
SELECT instance_id FROM __schema__.instances
WHERE bucket = ANY ($2::smallint[]) AND instance_id = ANY ($1::uuid[])
ORDER BY instance_id
FOR UPDATE SKIP LOCKED
