-- The events of the given instances after the projection's watermark for each, in stream
-- order, with each instance's process and version and each event's schema version.
SELECT e.instance_id, e.seq, e.event_type, e.data, e.recorded_at, i.process_id, i.version,
       e.schema_version
FROM __schema__.events e
JOIN __schema__.instances i USING (instance_id)
LEFT JOIN __schema__.projection_progress p ON p.name = $1 AND p.instance_id = e.instance_id
WHERE e.instance_id = ANY ($2::uuid[]) AND e.seq > coalesce(p.seq, 0)
ORDER BY e.instance_id, e.seq
