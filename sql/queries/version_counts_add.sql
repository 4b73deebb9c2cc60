-- Adds a batch's changes to the per-version instance counters.
INSERT INTO __schema__.version_counts AS c
    (process_id, version, running, completed, failed, cancelled)
SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
ON CONFLICT (process_id, version) DO UPDATE
SET running = c.running + EXCLUDED.running, completed = c.completed + EXCLUDED.completed,
    failed = c.failed + EXCLUDED.failed, cancelled = c.cancelled + EXCLUDED.cancelled
