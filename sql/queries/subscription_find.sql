-- The instance that has waited longest for this message name and key.
SELECT instance_id FROM __schema__.subscriptions
-- A keyless wait ('') is in its instance's bucket, so an empty key looks in every bucket.
WHERE bucket = CASE WHEN $2 = '' THEN bucket ELSE __schema__.bucket_of_key($2) END
  AND message_name = $1 AND correlation_key = $2
ORDER BY created_at, instance_id
LIMIT 1
