-- The instance that has waited longest for this message name and key.
SELECT instance_id FROM __schema__.subscriptions
WHERE message_name = $1 AND correlation_key = $2
ORDER BY created_at, instance_id
LIMIT 1
