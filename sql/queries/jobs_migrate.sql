-- Moves an instance's jobs to their steps (and handlers) in the new version.
-- The `= ANY` repeats the join key so that the plan reads the batch's rows through the index
-- however small the table was when the plan was cached (a plan made on an empty table would
-- otherwise scan the whole table on every call, as it grows).
-- $4: the buckets of the ids (longrun::bucket::buckets_of), so that only their partitions are read.
UPDATE __schema__.jobs j SET step_id = u.step_id, handler = u.handler
FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(job_id, step_id, handler)
WHERE j.job_id = u.job_id AND j.bucket = ANY ($4::smallint[]) AND j.job_id = ANY ($1::uuid[])
