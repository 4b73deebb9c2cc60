-- Moves an instance's timers to their steps in the new version.
-- The `= ANY` repeats the join key so that the plan reads the batch's rows through the index
-- however small the table was when the plan was cached (a plan made on an empty table would
-- otherwise scan the whole table on every call, as it grows).
-- $3: the buckets of the ids (longrun::bucket::buckets_of), so that only their partitions are read.
UPDATE __schema__.timers t SET step_id = u.step_id
FROM unnest($1::uuid[], $2::text[]) AS u(timer_id, step_id)
WHERE t.timer_id = u.timer_id AND t.bucket = ANY ($3::smallint[]) AND t.timer_id = ANY ($1::uuid[])
