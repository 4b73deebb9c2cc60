-- Moves a locked instance to another version of its process, with its new state.
UPDATE __schema__.instances
SET version = $2, current_step = $3, waiting_for = $4, variables = $5, state = $6, seq = $7,
    updated_at = $8
WHERE instance_id = $1 AND seq = $9
