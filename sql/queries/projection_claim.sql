-- Takes a projection's row for one batch; no row while another engine's batch holds it (that
-- engine moves the projection meanwhile) or before the row exists.
SELECT last_xid::text::bigint, last_position
FROM __schema__.projections WHERE name = $1
FOR UPDATE SKIP LOCKED
