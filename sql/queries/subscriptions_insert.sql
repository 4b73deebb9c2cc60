-- Opens subscriptions (a batch).
INSERT INTO __schema__.subscriptions (instance_id, step_id, message_name, correlation_key, created_at)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
