-- Moves a consumer's checkpoints, one per bucket of the acknowledged messages (each bucket's
-- last: $3 to $6), never backwards, and renews its lease: only for the lease holder. `held` is
-- 0 when the lease was lost (and nothing moved).
WITH held AS (
    UPDATE __schema__.consumers
    SET lease_expires_at = $7, updated_at = $8
    WHERE name = $1 AND lease_owner = $2
    RETURNING name
),
moved AS (
    UPDATE __schema__.consumer_checkpoints k
    SET last_xid = u.xid::text::xid8, last_instance = u.instance_id, last_seq = u.seq
    FROM held,
         unnest($3::smallint[], $4::bigint[], $5::uuid[], $6::bigint[])
             AS u(bucket, xid, instance_id, seq)
    WHERE k.bucket = u.bucket AND k.name = held.name
      AND (k.last_xid, k.last_instance, k.last_seq) < (u.xid::text::xid8, u.instance_id, u.seq)
    RETURNING 1
)
SELECT count(*) AS held FROM held
