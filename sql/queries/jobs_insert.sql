-- Creates jobs (a batch). A job for a handler of the engine that made it comes already leased
-- to that engine, which runs it without a claim round trip.
INSERT INTO __schema__.jobs
    (job_id, instance_id, step_id, handler, variables, attempts, run_at, lease_token,
     lease_owner, lease_expires_at, created_at)
SELECT u.job_id, u.instance_id, u.step_id, u.handler, u.variables,
       CASE WHEN u.lease_token IS NULL THEN 0 ELSE 1 END, u.at, u.lease_token,
       u.lease_owner, u.lease_expires_at, u.at
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::jsonb[], $6::timestamptz[],
            $7::uuid[], $8::text[], $9::timestamptz[])
     AS u(job_id, instance_id, step_id, handler, variables, at, lease_token, lease_owner,
          lease_expires_at)
