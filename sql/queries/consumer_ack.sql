-- Moves a consumer's checkpoints, one per bucket of the acknowledged messages (each bucket's
-- last: $3 to $6), never backwards: only for the lease holder, whose row it locks (FOR SHARE:
-- a claim by another engine waits for this to commit, and then reads the moved checkpoints).
-- The lease is renewed (to $7) only when it ends before $9, so a busy consumer rewrites its
-- row once every few seconds, not at every batch. `held` is 0 when the lease was lost (and
-- nothing moved).
--
-- A move deletes the bucket's checkpoint row and inserts the next one, never updating a row in
-- place: readers find a bucket's checkpoint as its greatest row by the key, one index probe,
-- however many dead versions a long-running transaction elsewhere keeps from being pruned.
WITH held AS (
    SELECT name FROM __schema__.consumers
    WHERE name = $1 AND lease_owner = $2
    FOR SHARE
),
renewed AS (
    UPDATE __schema__.consumers c
    SET lease_expires_at = $7, updated_at = $8
    FROM held
    WHERE c.name = held.name AND c.lease_expires_at < $9
),
now_at AS (
    SELECT u.bucket, u.xid::text::xid8 AS xid, u.instance_id, u.seq, k.last_xid, k.last_instance,
           k.last_seq
    FROM held,
         unnest($3::smallint[], $4::bigint[], $5::uuid[], $6::bigint[])
             AS u(bucket, xid, instance_id, seq)
    LEFT JOIN LATERAL (
        SELECT k.last_xid, k.last_instance, k.last_seq
        FROM __schema__.consumer_checkpoints k
        WHERE k.bucket = u.bucket AND k.name = $1
        ORDER BY k.last_xid DESC, k.last_instance DESC, k.last_seq DESC
        LIMIT 1
    ) k ON true
    WHERE k.last_xid IS NULL
       OR (k.last_xid, k.last_instance, k.last_seq) < (u.xid::text::xid8, u.instance_id, u.seq)
),
gone AS (
    DELETE FROM __schema__.consumer_checkpoints k
    USING now_at n
    WHERE k.bucket = n.bucket AND k.name = $1
      AND (k.last_xid, k.last_instance, k.last_seq) = (n.last_xid, n.last_instance, n.last_seq)
),
moved AS (
    INSERT INTO __schema__.consumer_checkpoints (bucket, name, last_xid, last_instance, last_seq)
    SELECT n.bucket, $1, n.xid, n.instance_id, n.seq FROM now_at n
)
SELECT count(*) AS held FROM held
