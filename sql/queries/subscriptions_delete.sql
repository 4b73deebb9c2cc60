-- Closes subscriptions (a batch).
DELETE FROM __schema__.subscriptions s
USING unnest($1::uuid[], $2::text[]) AS d(instance_id, step_id)
WHERE s.instance_id = d.instance_id AND s.step_id = d.step_id
