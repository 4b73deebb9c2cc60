-- The oldest unexpired buffered message an instance that starts waiting can take.
SELECT message_id, payload FROM __schema__.inbox
WHERE status = 'buffered' AND name = $1 AND key = $2 AND expires_at > $3
ORDER BY received_at
LIMIT 1
FOR UPDATE SKIP LOCKED
