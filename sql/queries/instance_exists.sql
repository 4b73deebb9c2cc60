-- Whether an instance with this id exists (an idempotent start's derived id).
SELECT process_id FROM __schema__.instances WHERE instance_id = $1
