-- The next instances of a broadcast ($1: the subscription name `signal:<name>`): those that
-- waited for it when it was thrown ($2), after the cursor ($3), in id order, at most $4.
SELECT DISTINCT instance_id
FROM __schema__.subscriptions
WHERE message_name = $1 AND correlation_key = '' AND created_at <= $2 AND instance_id > $3
ORDER BY instance_id
LIMIT $4
