-- Removes finished jobs whose claim is still held (a batch of job id and token pairs). A job
-- missing from the result was taken over: its holder must not record the completion.
DELETE FROM __schema__.jobs j
USING unnest($1::uuid[], $2::uuid[]) AS c(job_id, lease_token)
WHERE j.job_id = c.job_id AND j.lease_token = c.lease_token
RETURNING j.job_id
