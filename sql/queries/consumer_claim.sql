-- Takes (or renews) the lease on a consumer, creating it, with a checkpoint at the start of
-- each of the 256 buckets, if new. Returns its name, or no row while another holder's lease
-- runs. The holder's own lease is renewed (to $4) only when it ends before $6 or the topics
-- changed; otherwise the row is left as it is (`kept`), so that polling does not write a new
-- row version each time.
WITH c AS (
    INSERT INTO __schema__.consumers AS c
        (name, topics, lease_owner, lease_expires_at, updated_at)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (name) DO UPDATE
    SET topics = EXCLUDED.topics, lease_owner = EXCLUDED.lease_owner,
        lease_expires_at = EXCLUDED.lease_expires_at, updated_at = EXCLUDED.updated_at
    WHERE c.lease_owner IS NULL OR c.lease_expires_at <= EXCLUDED.updated_at
       OR (c.lease_owner = EXCLUDED.lease_owner
           AND (c.lease_expires_at < $6 OR c.topics IS DISTINCT FROM EXCLUDED.topics))
    RETURNING c.name
),
kept AS (
    SELECT k.name FROM __schema__.consumers k
    WHERE k.name = $1 AND k.lease_owner = $3 AND k.lease_expires_at >= $6 AND k.topics = $2
      AND NOT EXISTS (SELECT 1 FROM c)
),
made AS (
    INSERT INTO __schema__.consumer_checkpoints (bucket, name)
    SELECT b, c.name FROM c, generate_series(0, 255) AS b
    WHERE NOT EXISTS (SELECT 1 FROM (SELECT 1 FROM __schema__.consumer_checkpoints k
                                     WHERE k.bucket = 0 AND k.name = $1
                                     ORDER BY k.last_xid DESC, k.last_instance DESC,
                                              k.last_seq DESC
                                     LIMIT 1) AS any_row)
    ON CONFLICT DO NOTHING
)
SELECT name FROM c
UNION ALL
SELECT name FROM kept
