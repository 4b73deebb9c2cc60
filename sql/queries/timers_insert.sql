-- Starts timers (a batch).
INSERT INTO __schema__.timers (timer_id, instance_id, step_id, kind, due_at, created_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[],
                     $6::timestamptz[])
