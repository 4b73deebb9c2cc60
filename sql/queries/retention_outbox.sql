-- One batch of outbox retention: up to $2 outbound messages written before $1 that every
-- consumer reading their topic has passed (its checkpoint for their bucket is at or after them). A topic no
-- consumer reads keeps its messages for the outbox retention only.
-- $3: the buckets of one group (Store::bucket_groups), or NULL for all (the plain layout's
-- one group): run once per group, it locks and deletes in one partition (on Citus, one shard).
WITH doomed AS (
    SELECT o.bucket, o.instance_id, o.message_id FROM __schema__.outbox o
    WHERE o.created_at < $1
      AND ($3::smallint[] IS NULL OR o.bucket = ANY ($3::smallint[]))
      AND NOT EXISTS (
          SELECT 1 FROM __schema__.consumers c
          JOIN __schema__.consumer_checkpoints k ON k.bucket = o.bucket AND k.name = c.name
          WHERE o.topic = ANY (c.topics)
            AND (o.xid, o.instance_id, o.seq) > (k.last_xid, k.last_instance, k.last_seq))
    ORDER BY o.created_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
DELETE FROM __schema__.outbox o USING doomed d
WHERE o.bucket = d.bucket AND o.instance_id = d.instance_id AND o.message_id = d.message_id
  AND ($3::smallint[] IS NULL OR o.bucket = ANY ($3::smallint[]))
