-- Moves a projection's checkpoint after a batch.
UPDATE __schema__.projections
SET last_xid = $2::bigint::text::xid8, last_position = $3, events = events + $4, updated_at = $5
WHERE name = $1
