-- Gives a consumer's lease up (on shutdown), so another engine takes it at once.
UPDATE __schema__.consumers SET lease_owner = NULL, lease_expires_at = NULL
WHERE name = $1 AND lease_owner = $2
