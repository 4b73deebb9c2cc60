-- Writes outbound messages (a batch), written at $8, with the writing transaction's xid or the
-- one given ($9: see caller_tx_enter), the trace each goes out under ($10, $11; null for none)
-- and the seq of the event that sent it ($12).
INSERT INTO __schema__.outbox
    (bucket, message_id, instance_id, seq, topic, kind, name, key, payload, created_at,
     trace_key, traceparent, xid)
SELECT __schema__.bucket_of(u.instance_id), u.message_id, u.instance_id, u.seq, u.topic, u.kind,
       u.name, u.key, u.payload, $8::timestamptz, u.trace_key, u.traceparent,
       coalesce($9::bigint::text::xid8, pg_current_xact_id())
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::jsonb[], $10::text[], $11::text[], $12::bigint[])
     AS u(message_id, instance_id, topic, kind, name, key, payload, trace_key, traceparent, seq)
