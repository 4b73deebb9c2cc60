-- Puts a projection back to the first event of every bucket (its own rows are deleted by the
-- projection).
WITH progress AS (DELETE FROM __schema__.projection_progress WHERE name = $1),
checkpoints AS (
    UPDATE __schema__.projection_checkpoints
    SET last_xid = '0', last_instance = '00000000-0000-0000-0000-000000000000', last_seq = 0
    WHERE name = $1
)
UPDATE __schema__.projections
SET events = 0, rebuilt_at = $2, updated_at = $2
WHERE name = $1
