-- Records a delivered chunk: the processes that start on the signal were started, the
-- cursor moves past the chunk's last instance, and the broadcast is finished when the chunk
-- was the last ($4: finished, at $5).
UPDATE __schema__.signals
SET started = true, after_instance = $2, delivered = delivered + $3,
    finished_at = CASE WHEN $4::bool THEN $5::timestamptz END
WHERE signal_id = $1
