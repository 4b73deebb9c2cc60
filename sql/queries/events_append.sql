-- Appends events (a batch), all of the current event schema version, with the writing
-- transaction's xid or the one given ($7: see caller_tx_enter). The primary key
-- (instance_id, seq) refuses a second writer of the same position.
INSERT INTO __schema__.events
    (bucket, instance_id, seq, event_type, data, recorded_at, schema_version, xid)
SELECT __schema__.bucket_of(u.instance_id), u.*, $6::smallint, coalesce($7::bigint::text::xid8, pg_current_xact_id())
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::jsonb[], $5::timestamptz[]) AS u(instance_id, seq, event_type, data, recorded_at)
