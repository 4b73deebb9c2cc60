-- Reads a consumer's next messages. Each bucket is read on its own, after the consumer's
-- checkpoint for that bucket, in (xid, instance_id, seq) order, at most $3 per bucket, and only
-- below the read horizon ($2, from read_horizon, in an earlier statement): a message whose
-- transaction commits late is read late, never skipped. No order across buckets is assumed (on
-- Citus each bucket is read on its own shard). At most $4 in all, taken round by round (every
-- bucket's first, then every bucket's second, ...), so what is returned is, in each bucket, a
-- run from its checkpoint. Each (bucket, topic) is read on its own, an ordered index scan that
-- stops after $3 rows (with `topic = ANY`, PostgreSQL 15 reads the bucket's whole backlog and
-- sorts it); the first $3 of a bucket across its topics are kept. A bucket's checkpoint is its
-- greatest row (see consumer_ack): an index probe that never walks the row versions of earlier
-- checkpoints.
SELECT bucket, xid, instance_id, seq, message_id, topic, kind, name, key, payload, created_at,
       trace_key, traceparent
FROM (
    SELECT o.bucket, o.xid::text::bigint AS xid, o.instance_id, o.seq, o.message_id, o.topic,
           o.kind, o.name, o.key, o.payload, o.created_at, o.trace_key, o.traceparent,
           row_number() OVER (PARTITION BY o.bucket ORDER BY o.xid, o.instance_id, o.seq) AS round
    FROM (SELECT g::smallint AS bucket FROM generate_series(0, 255) AS g) AS b
    CROSS JOIN LATERAL (
        SELECT k.last_xid, k.last_instance, k.last_seq
        FROM __schema__.consumer_checkpoints k
        WHERE k.bucket = b.bucket AND k.name = $1
        ORDER BY k.last_xid DESC, k.last_instance DESC, k.last_seq DESC
        LIMIT 1
    ) k
    CROSS JOIN (SELECT DISTINCT unnest($5::text[])) AS t(topic)
    CROSS JOIN LATERAL (
        SELECT o.*
        FROM __schema__.outbox o
        WHERE o.bucket = b.bucket
          AND o.topic = t.topic
          AND (o.xid, o.instance_id, o.seq) > (k.last_xid, k.last_instance, k.last_seq)
          AND o.xid < $2::bigint::text::xid8
        ORDER BY o.xid, o.instance_id, o.seq
        LIMIT $3
    ) o
) m
WHERE round <= $3
ORDER BY round, bucket
LIMIT $4
