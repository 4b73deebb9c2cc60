-- Cancels timers (a batch), in the transaction that ends the wait they guard.
-- $2: the buckets of the ids (longrun::bucket::buckets_of), so that only their partitions are read.
DELETE FROM __schema__.timers WHERE bucket = ANY ($2::smallint[]) AND timer_id = ANY ($1::uuid[])
