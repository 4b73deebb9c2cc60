-- The instance an open task belongs to.
SELECT instance_id FROM __schema__.tasks WHERE task_id = $1
