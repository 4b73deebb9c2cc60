-- Timer starts due at $1, at most $2, locked for this transaction; rows another engine is
-- firing are skipped (it moves them in its own transaction).
SELECT process_id, version, due_at, fired
FROM __schema__.start_timers
WHERE due_at <= $1
ORDER BY due_at
LIMIT $2
FOR UPDATE SKIP LOCKED
