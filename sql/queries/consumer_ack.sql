-- Moves a consumer's checkpoint and renews its lease, only for the lease holder.
UPDATE __schema__.consumers
SET last_xid = $3::bigint::text::xid8, last_position = $4, lease_expires_at = $5, updated_at = $6
WHERE name = $1 AND lease_owner = $2
