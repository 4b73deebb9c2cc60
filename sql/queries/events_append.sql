-- Appends events (a batch), all of the current event schema version. The primary key
-- (instance_id, seq) refuses a second writer of the same position.
INSERT INTO __schema__.events (instance_id, seq, event_type, data, recorded_at, schema_version)
SELECT u.*, $6::smallint
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::jsonb[], $5::timestamptz[]) AS u
