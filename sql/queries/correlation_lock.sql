-- Serializes delivery and subscription of one (message name, key) pair, so that a message
-- arriving while an instance starts waiting for it is neither missed nor taken twice: the row
-- of each pair in `locks` is inserted, or, if it exists, locked by the conflict (PostgreSQL
-- locks the conflicting row even where the `WHERE` of `DO UPDATE` is false); either way the
-- lock is held until the transaction ends. The row is rewritten only when its `taken_at` is
-- an hour old, which is all retention needs: most takes write a lock mark, not a new row.
-- $1 the buckets, $2 the lock keys: distinct, sorted by key, taken in that order, those of one
-- group of buckets per statement and the groups in order (Store::split_by_group), so two
-- transactions never wait for each other in a cycle and each statement locks in one partition.
INSERT INTO __schema__.locks AS l (bucket, lock_key, taken_at)
SELECT b, k, now()
FROM unnest($1::smallint[], $2::text[]) WITH ORDINALITY AS t(b, k, i)
ORDER BY i
ON CONFLICT (bucket, lock_key) DO UPDATE SET taken_at = excluded.taken_at
WHERE l.taken_at < excluded.taken_at - interval '1 hour'
