-- Writes outbound messages (a batch), with the writing transaction's xid or the one given
-- ($9: see caller_tx_enter).
INSERT INTO __schema__.outbox
    (message_id, instance_id, topic, kind, name, key, payload, created_at, xid)
SELECT u.*, coalesce($9::bigint::text::xid8, pg_current_xact_id())
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::jsonb[], $8::timestamptz[]) AS u
