-- Instances by whether they ended, counted exactly (`longrun storage` divides the bytes by the
-- ended ones: what a completed instance leaves behind).
SELECT count(*) FILTER (WHERE status <> 'running') AS ended,
       count(*) FILTER (WHERE status = 'running') AS running
FROM __schema__.instances
