-- The oldest signal whose broadcast is not finished, locked for this chunk; one another
-- engine is delivering is skipped (each takes its own).
SELECT signal_id, name, payload, thrown_at, started, after_instance
FROM __schema__.signals
WHERE finished_at IS NULL
ORDER BY thrown_at
LIMIT 1
FOR UPDATE SKIP LOCKED
