-- Instances matching the console's filters, newest first (ids are UUIDv7), after a cursor.
-- $1 process, $2 version, $3 status (running, completed, failed, cancelled), $4 business key,
-- $5 variables the instance's contain (jsonb @>), $6/$7 started at or after / before,
-- $8 cursor (ids below it), $9 only open incidents, $10 only paused, $11 limit, $12 the step
-- it is at (current_step: where it waits, or one of the steps where its branches wait).
-- Not prepared once and reused: each run is planned for its own filters.
SELECT instance_id, process_id, version, business_key, status, current_step, waiting_for,
       variables, seq, started_at, updated_at, ended_at, state
FROM __schema__.instances
WHERE ($1::text IS NULL OR process_id = $1)
  AND ($2::int IS NULL OR version = $2)
  AND ($3::text IS NULL OR status = $3)
  AND ($4::text IS NULL OR business_key = $4)
  AND ($5::jsonb IS NULL OR variables @> $5)
  AND ($6::timestamptz IS NULL OR started_at >= $6)
  AND ($7::timestamptz IS NULL OR started_at < $7)
  AND ($8::uuid IS NULL OR instance_id < $8)
  AND (NOT $9::bool OR (status = 'running' AND (state ? 'incidents' OR state ? 'incident')
                        AND instance_id IN (SELECT a.instance_id FROM __schema__.activity a
                                            WHERE a.incident AND a.ended_at IS NULL)))
  AND (NOT $10::bool OR (status = 'running' AND state ? 'paused'))
  AND ($12::text IS NULL OR current_step = $12)
ORDER BY instance_id DESC
LIMIT $11
