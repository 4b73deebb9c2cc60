-- Running timers, soonest first, optionally of one process and due before a time.
SELECT t.timer_id, t.instance_id, i.process_id, i.business_key, t.step_id, t.kind, t.due_at
FROM __schema__.timers t JOIN __schema__.instances i USING (instance_id)
WHERE ($1::text IS NULL OR i.process_id = $1)
  AND ($2::timestamptz IS NULL OR t.due_at < $2)
ORDER BY t.due_at
LIMIT $3
