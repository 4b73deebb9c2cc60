-- The earliest timers in the buckets $2 (this engine's share): those due now are fired, the
-- first one not yet due tells the engine how long it may sleep. A read: the firing locks each
-- timer's instance and takes the timer by its key.
SELECT timer_id, instance_id, due_at FROM __schema__.timers
WHERE bucket = ANY ($2::smallint[])
ORDER BY due_at LIMIT $1
