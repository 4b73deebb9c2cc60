-- Records inbound messages (a batch); the ids returned are the new ones, the rest were seen
-- before (duplicates).
INSERT INTO __schema__.inbox (bucket, message_id, name, key, payload, status, received_at, expires_at)
SELECT __schema__.bucket_of_key(u.key), u.message_id, u.name, u.key, u.payload, 'received', u.received_at, u.expires_at
FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::timestamptz[], $6::timestamptz[])
     AS u(message_id, name, key, payload, received_at, expires_at)
ON CONFLICT (bucket, message_id) DO NOTHING
RETURNING message_id
