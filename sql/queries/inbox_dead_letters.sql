-- Dead-lettered messages, newest first.
SELECT message_id, name, key, reason, received_at, processed_at FROM __schema__.inbox
WHERE status = 'dead' ORDER BY processed_at DESC LIMIT $1
