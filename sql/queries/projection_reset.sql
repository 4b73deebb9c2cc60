-- Puts a projection back to the first event (its own rows are deleted by the projection).
WITH progress AS (DELETE FROM __schema__.projection_progress WHERE name = $1)
UPDATE __schema__.projections
SET last_xid = '0', last_position = 0, events = 0, rebuilt_at = $2, updated_at = $2
WHERE name = $1
