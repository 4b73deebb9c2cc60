-- For each (message name, key) pair, the instance that has waited longest for it.
SELECT DISTINCT ON (s.message_name, s.correlation_key)
       s.message_name, s.correlation_key, s.instance_id
FROM __schema__.subscriptions s
JOIN unnest($1::text[], $2::text[]) AS w(message_name, correlation_key)
  ON s.message_name = w.message_name AND s.correlation_key = w.correlation_key
ORDER BY s.message_name, s.correlation_key, s.created_at, s.instance_id
