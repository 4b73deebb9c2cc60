-- One instance's running timers.
SELECT timer_id, step_id, kind, due_at FROM __schema__.timers
WHERE instance_id = $1 ORDER BY due_at
