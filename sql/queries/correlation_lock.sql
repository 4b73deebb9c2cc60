-- Serializes delivery and subscription of one (message name, key) pair, so that a message
-- arriving while an instance starts waiting for it is neither missed nor taken twice: the row
-- of each pair in `locks` is inserted or updated, which holds its row lock until the
-- transaction ends. $1 the buckets, $2 the lock keys: distinct, sorted by key, taken in that
-- order (so two transactions never wait for each other in a cycle).
INSERT INTO __schema__.locks AS l (bucket, lock_key, taken_at)
SELECT b, k, now()
FROM unnest($1::smallint[], $2::text[]) WITH ORDINALITY AS t(b, k, i)
ORDER BY i
ON CONFLICT (bucket, lock_key) DO UPDATE SET taken_at = excluded.taken_at
