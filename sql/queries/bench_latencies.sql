-- Bench: start-to-end time of every ended instance, in milliseconds (engine clock stamps).
SELECT (extract(epoch FROM ended_at - started_at) * 1000)::float8
FROM __schema__.instances WHERE ended_at IS NOT NULL
