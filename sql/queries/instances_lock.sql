-- Locks instances for a transition, in id order so that concurrent batches never deadlock.
SELECT instance_id, process_id, version, state, seq, variables
FROM __schema__.instances
WHERE instance_id = ANY ($1::uuid[])
ORDER BY instance_id
FOR UPDATE
