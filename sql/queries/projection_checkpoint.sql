-- Moves a projection's checkpoints after a batch, one per bucket it read (each bucket's last
-- event looked at: $2 to $5), never backwards, and counts the events it applied.
WITH moved AS (
    UPDATE __schema__.projection_checkpoints k
    SET last_xid = u.xid::text::xid8, last_instance = u.instance_id, last_seq = u.seq
    FROM unnest($2::smallint[], $3::bigint[], $4::uuid[], $5::bigint[])
         AS u(bucket, xid, instance_id, seq)
    WHERE k.bucket = u.bucket AND k.name = $1
      AND (k.last_xid, k.last_instance, k.last_seq) < (u.xid::text::xid8, u.instance_id, u.seq)
)
UPDATE __schema__.projections
SET events = events + $6, updated_at = $7
WHERE name = $1
