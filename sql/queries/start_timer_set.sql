-- A deploy's timer start: the process's schedule becomes this version's, first due at $3.
INSERT INTO __schema__.start_timers (process_id, version, due_at, fired)
VALUES ($1, $2, $3, 0)
ON CONFLICT (process_id) DO UPDATE
SET version = EXCLUDED.version, due_at = EXCLUDED.due_at, fired = 0
