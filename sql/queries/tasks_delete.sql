-- Removes tasks that are no longer open (completed, or withdrawn with their step or
-- instance); their candidate rows go with them (ON DELETE CASCADE).
DELETE FROM __schema__.tasks WHERE task_id = ANY ($1::uuid[])
