-- The per-step counters of one process version.
SELECT step_id, waiting, incidents, completed, cancelled
FROM __schema__.step_counts
WHERE process_id = $1 AND version = $2
ORDER BY step_id
