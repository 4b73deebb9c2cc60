-- Instances, newest first, optionally by process and status.
SELECT instance_id, process_id, version, business_key, status, current_step, waiting_for,
       variables, seq, started_at, updated_at, ended_at, state
FROM __schema__.instances
WHERE ($1::text IS NULL OR process_id = $1) AND ($2::text IS NULL OR status = $2)
ORDER BY instance_id DESC
LIMIT $3
