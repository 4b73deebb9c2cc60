-- Creates a projection's row, at the first event, if it does not exist yet.
INSERT INTO __schema__.projections (name, updated_at) VALUES ($1, $2)
ON CONFLICT (name) DO NOTHING
