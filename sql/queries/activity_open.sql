-- The activity rows still open (begun, not ended) for some instances.
SELECT instance_id, seq, process_id, version, step_id, kind, started_at, attempts, incident,
       claimed_at
FROM __schema__.activity
WHERE instance_id = ANY ($1::uuid[]) AND ended_at IS NULL
