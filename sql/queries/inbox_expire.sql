-- Dead-letters buffered messages whose time to live ran out (a bounded batch).
UPDATE __schema__.inbox
SET status = 'dead', processed_at = $1,
    reason = 'expired: no instance waited for ' || name || ' with key ' || key || ' before ' || expires_at
WHERE (bucket, message_id) IN (
    SELECT bucket, message_id FROM __schema__.inbox
    WHERE status = 'buffered' AND expires_at <= $1
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
