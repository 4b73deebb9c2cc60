-- One batch of lock rows nobody took since $1 (up to $2): a row serves only while a
-- transaction holds it, and one taken again later is inserted again. Rows held now are
-- skipped.
-- $3: the buckets of one group (Store::bucket_groups), or NULL for all (the plain layout's
-- one group): run once per group, it locks and deletes in one partition (on Citus, one shard).
WITH doomed AS (
    SELECT bucket, lock_key FROM __schema__.locks
    WHERE taken_at < $1
      AND ($3::smallint[] IS NULL OR bucket = ANY ($3::smallint[]))
    ORDER BY taken_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
DELETE FROM __schema__.locks l USING doomed d
WHERE l.bucket = d.bucket AND l.lock_key = d.lock_key
  AND ($3::smallint[] IS NULL OR l.bucket = ANY ($3::smallint[]))
