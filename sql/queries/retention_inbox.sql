-- One batch of the deduplication window: up to $2 inbound messages received before $1 and
-- settled (correlated, started an instance, or dead-lettered) are forgotten. A message still
-- buffered is kept until it is taken or expires. A redelivery of a forgotten id is new.
-- $3: the buckets of one group (Store::bucket_groups), or NULL for all (the plain layout's
-- one group): run once per group, it locks and deletes in one partition (on Citus, one shard).
WITH doomed AS (
    SELECT bucket, message_id FROM __schema__.inbox
    WHERE status <> 'buffered' AND received_at < $1
      AND ($3::smallint[] IS NULL OR bucket = ANY ($3::smallint[]))
    ORDER BY received_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
DELETE FROM __schema__.inbox i USING doomed d
WHERE i.bucket = d.bucket AND i.message_id = d.message_id
  AND ($3::smallint[] IS NULL OR i.bucket = ANY ($3::smallint[]))
