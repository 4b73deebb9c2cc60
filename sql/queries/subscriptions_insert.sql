-- Opens subscriptions (a batch).
INSERT INTO __schema__.subscriptions (bucket, instance_id, step_id, message_name, correlation_key, created_at)
SELECT CASE WHEN u.correlation_key = '' THEN __schema__.bucket_of(u.instance_id)
            ELSE __schema__.bucket_of_key(u.correlation_key) END, u.*
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
     AS u(instance_id, step_id, message_name, correlation_key, created_at)
