-- Removes finished jobs whose claim is still held (a batch of job id and token pairs). A job
-- missing from the result was taken over: its holder must not record the completion.
-- The `= ANY` repeats the join key so that the plan reads the batch's rows through the index
-- however small the table was when the plan was cached (a plan made on an empty table would
-- otherwise scan the whole table on every call, as it grows).
-- $3: the buckets of the ids (longrun::bucket::buckets_of), so that only their partitions are read.
DELETE FROM __schema__.jobs j
USING unnest($1::uuid[], $2::uuid[]) AS c(job_id, lease_token)
WHERE j.job_id = c.job_id AND j.lease_token = c.lease_token AND j.bucket = ANY ($3::smallint[]) AND j.job_id = ANY ($1::uuid[])
RETURNING j.job_id
