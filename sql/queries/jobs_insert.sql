-- Creates jobs (a batch), or re-arms a job for its next attempt (same id: the idempotency key
-- stays; `attempts` counts claims, so a job re-armed for attempt n starts at n - 1). A job for a handler of the engine that made it comes already leased to that engine,
-- which runs it without a claim round trip. Each job keeps its instance's trace, for the
-- handler's span.
INSERT INTO __schema__.jobs AS j
    (bucket, job_id, instance_id, step_id, handler, variables, attempts, run_at, lease_token,
     lease_owner, lease_expires_at, created_at, trace_key, traceparent)
SELECT __schema__.bucket_of(u.job_id), u.job_id, u.instance_id, u.step_id, u.handler, u.variables,
       u.attempts, u.run_at, u.lease_token,
       u.lease_owner, u.lease_expires_at, u.at, u.trace_key, u.traceparent
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::timestamptz[],
            $7::uuid[], $8::text[], $9::timestamptz[], $10::timestamptz[], $11::int[],
            $12::text[], $13::text[])
     AS u(job_id, instance_id, step_id, handler, variables, at, lease_token, lease_owner,
          lease_expires_at, run_at, attempts, trace_key, traceparent)
ON CONFLICT (bucket, job_id) DO UPDATE
SET variables = EXCLUDED.variables, run_at = EXCLUDED.run_at, attempts = EXCLUDED.attempts,
    lease_token = EXCLUDED.lease_token,
    lease_owner = EXCLUDED.lease_owner, lease_expires_at = EXCLUDED.lease_expires_at
