-- What one instance waits for.
SELECT step_id, message_name, correlation_key, created_at FROM __schema__.subscriptions
WHERE instance_id = $1
