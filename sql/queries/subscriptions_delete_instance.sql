-- Closes every subscription of one instance (they are opened again to match its new state).
DELETE FROM __schema__.subscriptions WHERE instance_id = $1
