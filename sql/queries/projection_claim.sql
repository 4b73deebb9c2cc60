-- Takes a projection's row for one batch; no row while another engine's batch holds it (that
-- engine moves the projection meanwhile) or before the row exists.
SELECT name FROM __schema__.projections WHERE name = $1
FOR UPDATE SKIP LOCKED
