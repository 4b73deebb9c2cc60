-- Cancels timers (a batch), in the transaction that ends the wait they guard.
-- $2: the bucket of each id (longrun::bucket::buckets_of): each row is found by one probe of
-- the key (bucket, id), and the partitioned layout reads only the partitions of those buckets.
DELETE FROM __schema__.timers
WHERE (bucket, timer_id) IN (SELECT * FROM unnest($2::smallint[], $1::uuid[]))
