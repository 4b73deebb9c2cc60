-- Closes subscriptions (a batch).
-- The `= ANY` repeats the join key so that the plan reads the batch's rows through the index
-- however small the table was when the plan was cached (a plan made on an empty table would
-- otherwise scan the whole table on every call, as it grows).
DELETE FROM __schema__.subscriptions s
USING unnest($1::uuid[], $2::text[]) AS d(instance_id, step_id)
WHERE s.instance_id = d.instance_id AND s.step_id = d.step_id AND s.instance_id = ANY ($1::uuid[])
