-- Creates a projection's row, with a checkpoint at the first event of each of the 256 buckets,
-- if it does not exist yet.
WITH p AS (
    INSERT INTO __schema__.projections (name, updated_at) VALUES ($1, $2)
    ON CONFLICT (name) DO NOTHING
    RETURNING name
)
INSERT INTO __schema__.projection_checkpoints (bucket, name)
SELECT b, p.name FROM p, generate_series(0, 255) AS b
ON CONFLICT DO NOTHING
