-- Starts timers (a batch).
INSERT INTO __schema__.timers (bucket, timer_id, instance_id, step_id, kind, due_at, created_at)
SELECT __schema__.bucket_of(u.timer_id), u.*
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[],
                     $6::timestamptz[])
     AS u(timer_id, instance_id, step_id, kind, due_at, created_at)
