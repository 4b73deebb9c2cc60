-- Locks the instances of due timers, skipping those another engine holds right now (they are
-- being fired or moved by it); in id order.
SELECT instance_id FROM __schema__.instances
WHERE instance_id = ANY ($1::uuid[])
ORDER BY instance_id
FOR UPDATE SKIP LOCKED
