-- Takes (or renews) the lease on a consumer, creating it, with a checkpoint at the start of
-- each of the 256 buckets, if new. Returns its name, or no row while another holder's lease
-- runs.
WITH c AS (
    INSERT INTO __schema__.consumers AS c
        (name, topics, lease_owner, lease_expires_at, updated_at)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (name) DO UPDATE
    SET topics = EXCLUDED.topics, lease_owner = EXCLUDED.lease_owner,
        lease_expires_at = EXCLUDED.lease_expires_at, updated_at = EXCLUDED.updated_at
    WHERE c.lease_owner IS NULL OR c.lease_owner = EXCLUDED.lease_owner
       OR c.lease_expires_at <= EXCLUDED.updated_at
    RETURNING c.name
),
made AS (
    INSERT INTO __schema__.consumer_checkpoints (bucket, name)
    SELECT b, c.name FROM c, generate_series(0, 255) AS b
    WHERE NOT EXISTS (SELECT 1 FROM __schema__.consumer_checkpoints k
                      WHERE k.bucket = 0 AND k.name = $1)
    ON CONFLICT (bucket, name) DO NOTHING
)
SELECT name FROM c
