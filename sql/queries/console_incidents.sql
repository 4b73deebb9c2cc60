-- Open incidents for the console, by instance id after a cursor: the executions the activity
-- projection marks (through activity_incident_idx), checked against the instance's live state,
-- so a retried incident is gone at once. Every candidate instance gives at least one row (with
-- a NULL step when its incident is gone), so the caller can tell whether more pages follow.
SELECT o.instance_id, i.process_id, i.version, i.business_key, inc->>'step' AS step,
       inc->>'error' AS error, (inc->>'attempts')::int AS attempts,
       (inc->>'at')::timestamptz AS since
FROM (SELECT DISTINCT a.instance_id FROM __schema__.activity a
      WHERE a.incident AND a.ended_at IS NULL
        AND ($1::text IS NULL OR a.process_id = $1)
        AND ($2::uuid IS NULL OR a.instance_id > $2)
      ORDER BY a.instance_id
      LIMIT $3) o
JOIN __schema__.instances i USING (instance_id)
LEFT JOIN LATERAL jsonb_array_elements(
    CASE WHEN i.status <> 'running' THEN '[]'::jsonb
         WHEN i.state ? 'incidents' THEN i.state->'incidents'
         WHEN i.state ? 'incident' THEN jsonb_build_array(i.state->'incident')
         ELSE '[]'::jsonb END) AS inc ON true
ORDER BY o.instance_id, step
