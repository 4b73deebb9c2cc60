-- Removes the candidate rows of tasks about to be written again (their lists or due dates
-- may have changed).
DELETE FROM __schema__.task_candidates WHERE task_id = ANY ($1::uuid[])
