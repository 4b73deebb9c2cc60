-- The events of the given instances after the projection's watermark for each, in stream
-- order, with each instance's process and version and each event's schema version.
SELECT e.instance_id, e.seq, e.event_type, e.data, e.recorded_at, i.process_id, i.version,
       e.schema_version
FROM unnest($2::uuid[]) AS u(instance_id)
JOIN __schema__.events e
  ON e.bucket = __schema__.bucket_of(u.instance_id) AND e.instance_id = u.instance_id
JOIN __schema__.instances i ON i.bucket = e.bucket AND i.instance_id = e.instance_id
LEFT JOIN __schema__.projection_progress p
  ON p.bucket = e.bucket AND p.name = $1 AND p.instance_id = e.instance_id
WHERE e.seq > coalesce(p.seq, 0)
ORDER BY e.instance_id, e.seq
