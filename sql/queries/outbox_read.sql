-- Reads a consumer's next messages. Each bucket is read on its own, after the consumer's
-- checkpoint for that bucket, in (xid, instance_id, seq) order, at most $3 per bucket, and only
-- below the read horizon ($2, from read_horizon, in an earlier statement): a message whose
-- transaction commits late is read late, never skipped. No order across buckets is assumed (on
-- Citus each bucket is read on its own shard). At most $4 in all, taken round by round (every
-- bucket's first, then every bucket's second, ...), so what is returned is, in each bucket, a
-- run from its checkpoint.
SELECT bucket, xid, instance_id, seq, message_id, topic, kind, name, key, payload, created_at,
       trace_key, traceparent
FROM (
    SELECT o.bucket, o.xid::text::bigint AS xid, o.instance_id, o.seq, o.message_id, o.topic,
           o.kind, o.name, o.key, o.payload, o.created_at, o.trace_key, o.traceparent,
           row_number() OVER (PARTITION BY o.bucket ORDER BY o.xid, o.instance_id, o.seq) AS round
    FROM __schema__.consumer_checkpoints k
    CROSS JOIN LATERAL (
        SELECT o.*
        FROM __schema__.outbox o
        WHERE o.bucket = k.bucket
          AND o.topic = ANY ($5::text[])
          AND (o.xid, o.instance_id, o.seq) > (k.last_xid, k.last_instance, k.last_seq)
          AND o.xid < $2::bigint::text::xid8
        ORDER BY o.xid, o.instance_id, o.seq
        LIMIT $3
    ) o
    WHERE k.name = $1
) m
ORDER BY round, bucket
LIMIT $4
