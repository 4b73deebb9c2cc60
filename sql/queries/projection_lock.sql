-- Waits for a projection's batch in flight, then holds its row (for a reset).
SELECT 1 FROM __schema__.projections WHERE name = $1 FOR UPDATE
