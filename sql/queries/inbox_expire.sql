-- Dead-letters buffered messages whose time to live ran out (a bounded batch), in the buckets
-- $3 (those of one partition, or one shard on Citus, of this engine's share).
UPDATE __schema__.inbox
SET status = 'dead', processed_at = $1,
    reason = 'expired: no instance waited for ' || name || ' with key ' || key || ' before ' || expires_at
WHERE (bucket, message_id) IN (
    SELECT bucket, message_id FROM __schema__.inbox
    WHERE status = 'buffered' AND expires_at <= $1 AND bucket = ANY ($3::smallint[])
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
