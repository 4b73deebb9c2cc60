-- Claims a batch of due, unclaimed jobs for the handlers this engine runs, in the buckets $7:
-- buckets of this engine's share that live in one partition (one shard on Citus), so the
-- statement locks rows in one place. SKIP LOCKED lets engines claim side by side; the token
-- fences the completion.
-- The jobs chosen are then found by their key (bucket, job_id), one probe each, and their
-- instances by theirs: a filter on the buckets there would read every row of them.
UPDATE __schema__.jobs j
SET lease_token = $4, lease_owner = $5, lease_expires_at = $6, attempts = j.attempts + 1
FROM __schema__.instances i
WHERE i.bucket = j.bucket AND i.instance_id = j.instance_id AND (j.bucket, j.job_id) IN (
    SELECT bucket, job_id FROM __schema__.jobs
    WHERE lease_token IS NULL AND handler = ANY ($1::text[]) AND run_at <= $2
      AND bucket = ANY ($7::smallint[])
    ORDER BY run_at
    LIMIT $3
    FOR UPDATE SKIP LOCKED
)
RETURNING j.job_id, j.instance_id, j.step_id, j.handler, j.variables, j.attempts, i.process_id,
          i.version, j.trace_key, j.traceparent
