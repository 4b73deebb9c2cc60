-- One instance's open jobs.
SELECT job_id, step_id, handler, attempts, run_at, lease_owner, lease_expires_at
FROM __schema__.jobs WHERE instance_id = $1
