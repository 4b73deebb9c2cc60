-- One instance's history, in order, with each event's schema version.
SELECT seq, event_type, data, recorded_at, schema_version FROM __schema__.events
WHERE bucket = __schema__.bucket_of($1) AND instance_id = $1 ORDER BY seq
