-- The instance an open task belongs to.
SELECT instance_id FROM __schema__.tasks WHERE bucket = __schema__.bucket_of($1) AND task_id = $1
