-- Reads a consumer's next messages after its checkpoint, in (xid, position) order, and only
-- below the read horizon ($5, from read_horizon, in an earlier statement): a message whose
-- transaction commits late is read late, never skipped.
SELECT position, xid::text::bigint AS xid, message_id, instance_id, topic, kind, name, key,
       payload, created_at, trace_key, traceparent
FROM __schema__.outbox
WHERE topic = ANY ($1::text[])
  AND (xid, position) > ($2::bigint::text::xid8, $3::bigint)
  AND xid < $5::bigint::text::xid8
ORDER BY xid, position
LIMIT $4
