-- Takes due timers of locked instances for firing in this transaction. A timer already fired
-- or cancelled is gone and not returned: each fires once.
-- $3: the bucket of each id (longrun::bucket::buckets_of): each row is found by one probe of
-- the key (bucket, id), and the partitioned layout reads only the partitions of those buckets.
DELETE FROM __schema__.timers
WHERE (bucket, timer_id) IN (SELECT * FROM unnest($3::smallint[], $1::uuid[])) AND due_at <= $2
RETURNING timer_id, instance_id, due_at
