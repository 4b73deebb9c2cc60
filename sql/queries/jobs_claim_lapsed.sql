-- Takes over jobs whose lease lapsed (their engine died or stalled), in the buckets $7 (those
-- of one partition, or one shard on Citus). The new token fences the old holder out.
-- The jobs chosen are then found by their key (bucket, job_id), one probe each, and their
-- instances by theirs: a filter on the buckets there would read every row of them.
UPDATE __schema__.jobs j
SET lease_token = $4, lease_owner = $5, lease_expires_at = $6, attempts = j.attempts + 1
FROM __schema__.instances i
WHERE i.bucket = j.bucket AND i.instance_id = j.instance_id AND (j.bucket, j.job_id) IN (
    SELECT bucket, job_id FROM __schema__.jobs
    WHERE lease_token IS NOT NULL AND lease_expires_at <= $2 AND handler = ANY ($1::text[])
      AND bucket = ANY ($7::smallint[])
    ORDER BY lease_expires_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
RETURNING j.job_id, j.instance_id, j.step_id, j.handler, j.variables, j.attempts, i.process_id,
          i.version, j.trace_key, j.traceparent
