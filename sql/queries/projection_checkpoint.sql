-- Moves a projection's checkpoints after a batch, one per bucket it read (each bucket's last
-- event looked at: $2 to $5), never backwards, and counts the events it applied. The caller
-- holds the projection's row (projection_claim).
--
-- As for consumers (consumer_ack.sql), a move deletes the bucket's checkpoint row and inserts
-- the next one: readers take a bucket's greatest row, so the dead versions a long-running
-- transaction keeps are never walked.
WITH now_at AS (
    SELECT u.bucket, u.xid::text::xid8 AS xid, u.instance_id, u.seq, k.last_xid, k.last_instance,
           k.last_seq
    FROM unnest($2::smallint[], $3::bigint[], $4::uuid[], $5::bigint[])
         AS u(bucket, xid, instance_id, seq)
    LEFT JOIN LATERAL (
        SELECT k.last_xid, k.last_instance, k.last_seq
        FROM __schema__.projection_checkpoints k
        WHERE k.bucket = u.bucket AND k.name = $1
        ORDER BY k.last_xid DESC, k.last_instance DESC, k.last_seq DESC
        LIMIT 1
    ) k ON true
    WHERE k.last_xid IS NULL
       OR (k.last_xid, k.last_instance, k.last_seq) < (u.xid::text::xid8, u.instance_id, u.seq)
),
gone AS (
    DELETE FROM __schema__.projection_checkpoints k
    USING now_at n
    WHERE k.bucket = n.bucket AND k.name = $1
      AND (k.last_xid, k.last_instance, k.last_seq) = (n.last_xid, n.last_instance, n.last_seq)
),
moved AS (
    INSERT INTO __schema__.projection_checkpoints (bucket, name, last_xid, last_instance, last_seq)
    SELECT n.bucket, $1, n.xid, n.instance_id, n.seq FROM now_at n
)
UPDATE __schema__.projections
SET events = events + $6, updated_at = $7
WHERE name = $1
