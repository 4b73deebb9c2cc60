-- Takes over jobs of one bucket ($7) whose lease lapsed (their engine died or stalled). The
-- new token fences the old holder out.
UPDATE __schema__.jobs j
SET lease_token = $4, lease_owner = $5, lease_expires_at = $6, attempts = j.attempts + 1
FROM __schema__.instances i
WHERE i.bucket = $7 AND i.instance_id = j.instance_id AND j.bucket = $7 AND j.job_id IN (
    SELECT job_id FROM __schema__.jobs
    WHERE bucket = $7 AND lease_token IS NOT NULL AND lease_expires_at <= $2
      AND handler = ANY ($1::text[])
    ORDER BY lease_expires_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
RETURNING j.job_id, j.instance_id, j.step_id, j.handler, j.variables, j.attempts, i.process_id,
          i.version, j.trace_key, j.traceparent
