-- The earliest timers: those due now are fired, the first one not yet due tells the engine
-- how long it may sleep.
SELECT timer_id, instance_id, due_at FROM __schema__.timers ORDER BY due_at LIMIT $1
