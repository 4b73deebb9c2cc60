-- Writes outbound messages (a batch).
INSERT INTO __schema__.outbox
    (message_id, instance_id, topic, kind, name, key, payload, created_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::jsonb[], $8::timestamptz[])
