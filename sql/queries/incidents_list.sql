-- Open incidents: running instances stopped at a step that ran out of attempts, oldest first.
SELECT instance_id, process_id, version, business_key, current_step,
       state->'incident'->>'error', (state->'incident'->>'attempts')::int,
       (state->'incident'->>'at')::timestamptz
FROM __schema__.instances
WHERE status = 'running' AND state ? 'incident' AND ($1::text IS NULL OR process_id = $1)
ORDER BY (state->'incident'->>'at')::timestamptz
LIMIT $2
