-- Records an inbound message; no row back means the id was seen before (a duplicate).
INSERT INTO __schema__.inbox (bucket, message_id, name, key, payload, status, received_at, expires_at)
VALUES (__schema__.bucket_of_key($3), $1, $2, $3, $4, 'received', $5, $6)
ON CONFLICT (bucket, message_id) DO NOTHING
RETURNING message_id
