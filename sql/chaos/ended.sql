-- Progress: instances that ended, and all instances.
SELECT count(*) FILTER (WHERE status <> 'running'), count(*) FROM __schema__.instances
