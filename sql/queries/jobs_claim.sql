-- Claims a batch of due, unclaimed jobs of one bucket ($7) for the handlers this engine runs.
-- SKIP LOCKED lets engines claim side by side; the token fences the completion.
UPDATE __schema__.jobs j
SET lease_token = $4, lease_owner = $5, lease_expires_at = $6, attempts = j.attempts + 1
FROM __schema__.instances i
WHERE i.bucket = $7 AND i.instance_id = j.instance_id AND j.bucket = $7 AND j.job_id IN (
    SELECT job_id FROM __schema__.jobs
    WHERE bucket = $7 AND lease_token IS NULL AND handler = ANY ($1::text[]) AND run_at <= $2
    ORDER BY run_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
RETURNING j.job_id, j.instance_id, j.step_id, j.handler, j.variables, j.attempts, i.process_id,
          i.version, j.trace_key, j.traceparent
