-- Adds a batch's changes to the per-step counters (one row per process, version and step).
INSERT INTO __schema__.step_counts AS c
    (process_id, version, step_id, waiting, incidents, completed, cancelled)
SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[],
                     $7::bigint[])
ON CONFLICT (process_id, version, step_id) DO UPDATE
SET waiting = c.waiting + EXCLUDED.waiting, incidents = c.incidents + EXCLUDED.incidents,
    completed = c.completed + EXCLUDED.completed, cancelled = c.cancelled + EXCLUDED.cancelled
