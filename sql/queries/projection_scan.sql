-- The events after a projection's checkpoints, to find the instances they belong to. Each
-- bucket is read on its own, after the projection's checkpoint for that bucket, in (xid,
-- instance_id, seq) order, at most $3 per bucket, and only below the read horizon ($2, from
-- read_horizon, in an earlier statement; so none is skipped). No order across buckets is
-- assumed. At most $4 in all, round by round (every bucket's first, then every bucket's
-- second, ...), so what is returned is, in each bucket, a run from its checkpoint: the last of
-- each bucket is its new checkpoint.
SELECT bucket, instance_id, xid, seq
FROM (
    SELECT e.bucket, e.instance_id, e.xid::text::bigint AS xid, e.seq,
           row_number() OVER (PARTITION BY e.bucket ORDER BY e.xid, e.instance_id, e.seq) AS round
    FROM (SELECT g::smallint AS bucket FROM generate_series(0, 255) AS g) AS b
    CROSS JOIN LATERAL (
        SELECT k.last_xid, k.last_instance, k.last_seq
        FROM __schema__.projection_checkpoints k
        WHERE k.bucket = b.bucket AND k.name = $1
        ORDER BY k.last_xid DESC, k.last_instance DESC, k.last_seq DESC
        LIMIT 1
    ) k
    CROSS JOIN LATERAL (
        SELECT e.bucket, e.instance_id, e.xid, e.seq
        FROM __schema__.events e
        WHERE e.bucket = b.bucket
          AND (e.xid, e.instance_id, e.seq) > (k.last_xid, k.last_instance, k.last_seq)
          AND e.xid < $2::bigint::text::xid8
        ORDER BY e.xid, e.instance_id, e.seq
        LIMIT $3
    ) e
) m
ORDER BY round, bucket
LIMIT $4
