-- Writes outbound messages (a batch), with the writing transaction's xid or the one given
-- ($9: see caller_tx_enter), and the trace each goes out under ($10, $11; null for none).
INSERT INTO __schema__.outbox
    (bucket, message_id, instance_id, topic, kind, name, key, payload, created_at, trace_key,
     traceparent, xid)
SELECT __schema__.bucket_of(u.instance_id), u.message_id, u.instance_id, u.topic, u.kind, u.name, u.key, u.payload, u.created_at,
       u.trace_key, u.traceparent, coalesce($9::bigint::text::xid8, pg_current_xact_id())
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::jsonb[], $8::timestamptz[], $10::text[], $11::text[])
     AS u(message_id, instance_id, topic, kind, name, key, payload, created_at, trace_key,
          traceparent)
