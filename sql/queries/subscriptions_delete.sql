-- Closes subscriptions (a batch): those of each (instance, step) in one bucket ($3; a wait's
-- subscriptions are in the buckets of their keys, which the caller names).
-- The `= ANY` repeats the join keys so that the plan reads the batch's rows through the index
-- however small the table was when the plan was cached (a plan made on an empty table would
-- otherwise scan the whole table on every call, as it grows), and prunes to the named buckets.
DELETE FROM __schema__.subscriptions s
USING unnest($1::uuid[], $2::text[], $3::smallint[]) AS d(instance_id, step_id, bucket)
WHERE s.bucket = d.bucket AND s.instance_id = d.instance_id AND s.step_id = d.step_id
  AND s.bucket = ANY ($3::smallint[]) AND s.instance_id = ANY ($1::uuid[])
