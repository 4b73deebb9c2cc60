-- Records an inbound message; no row back means the id was seen before (a duplicate).
INSERT INTO __schema__.inbox (message_id, name, key, payload, status, received_at, expires_at)
VALUES ($1, $2, $3, $4, 'buffered', $5, $6)
ON CONFLICT (message_id) DO NOTHING
RETURNING message_id
