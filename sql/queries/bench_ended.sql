-- Bench: how many of one run's instances (by business-key prefix) have ended.
SELECT count(*) FROM __schema__.instances WHERE business_key LIKE $1 AND status <> 'running'
