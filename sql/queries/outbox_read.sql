-- Reads a consumer's next messages after its checkpoint, in (xid, position) order, and only
-- from transactions older than every transaction still running: a message whose transaction
-- commits late is read late, never skipped.
SELECT position, xid::text::bigint AS xid, message_id, instance_id, topic, kind, name, key,
       payload, created_at
FROM __schema__.outbox
WHERE topic = ANY ($1::text[])
  AND (xid, position) > ($2::bigint::text::xid8, $3::bigint)
  AND xid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY xid, position
LIMIT $4
