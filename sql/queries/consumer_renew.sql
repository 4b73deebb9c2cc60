-- Renews a consumer's lease while its holder still handles a batch, so that a batch that takes
-- longer than the lease is not read again by another engine meanwhile (each would then redo
-- it and neither could acknowledge it). No row: the lease was lost.
UPDATE __schema__.consumers
SET lease_expires_at = $3, updated_at = $4
WHERE name = $1 AND lease_owner = $2
