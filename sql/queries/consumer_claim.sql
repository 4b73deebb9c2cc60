-- Takes (or renews) the lease on a consumer, creating it at the start of the outbox if new.
-- Returns its checkpoint, or no row while another holder's lease runs.
INSERT INTO __schema__.consumers AS c
    (name, topics, lease_owner, lease_expires_at, updated_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (name) DO UPDATE
SET topics = EXCLUDED.topics, lease_owner = EXCLUDED.lease_owner,
    lease_expires_at = EXCLUDED.lease_expires_at, updated_at = EXCLUDED.updated_at
WHERE c.lease_owner IS NULL OR c.lease_owner = EXCLUDED.lease_owner
   OR c.lease_expires_at <= EXCLUDED.updated_at
RETURNING c.last_xid::text::bigint AS last_xid, c.last_position
