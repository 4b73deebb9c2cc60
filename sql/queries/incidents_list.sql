-- Open incidents: one row per step of a running instance that ran out of attempts, oldest first.
SELECT instance_id, process_id, version, business_key, step, error, attempts, since
FROM __schema__.report_incidents
WHERE $1::text IS NULL OR process_id = $1
ORDER BY since
LIMIT $2
