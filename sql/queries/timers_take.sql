-- Takes due timers of locked instances for firing in this transaction. A timer already fired
-- or cancelled is gone and not returned: each fires once.
-- $3: the buckets of the ids (longrun::bucket::buckets_of), so that only their partitions are read.
DELETE FROM __schema__.timers
WHERE bucket = ANY ($3::smallint[]) AND timer_id = ANY ($1::uuid[]) AND due_at <= $2
RETURNING timer_id, instance_id, due_at
