-- Moves an instance's timers to their steps in the new version.
UPDATE __schema__.timers t SET step_id = u.step_id
FROM unnest($1::uuid[], $2::text[]) AS u(timer_id, step_id)
WHERE t.timer_id = u.timer_id
