-- For each (message name, key) pair, the instance that has waited longest for it.
-- The `= ANY` repeats the join key so that the plan reads the batch's rows through the index
-- however small the table was when the plan was cached (a plan made on an empty table would
-- otherwise scan the whole table on every call, as it grows).
-- $3: the keys' buckets (longrun::bucket::buckets_of_keys), NULL when a key is empty.
SELECT DISTINCT ON (s.message_name, s.correlation_key)
       s.message_name, s.correlation_key, s.instance_id
FROM __schema__.subscriptions s
JOIN unnest($1::text[], $2::text[]) AS w(message_name, correlation_key)
  ON s.message_name = w.message_name AND s.correlation_key = w.correlation_key
WHERE ($3::smallint[] IS NULL OR s.bucket = ANY ($3::smallint[]))
  AND s.message_name = ANY ($1::text[]) AND s.correlation_key = ANY ($2::text[])
ORDER BY s.message_name, s.correlation_key, s.created_at, s.instance_id
