-- Moves an instance's jobs to their steps (and handlers) in the new version.
UPDATE __schema__.jobs j SET step_id = u.step_id, handler = u.handler
FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(job_id, step_id, handler)
WHERE j.job_id = u.job_id
