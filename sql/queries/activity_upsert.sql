-- Writes activity rows: new executions, and the end, outcome, attempts and incident flag of
-- open ones.
INSERT INTO __schema__.activity
    (instance_id, seq, process_id, version, step_id, kind, started_at, ended_at, outcome, attempts,
     incident)
SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::int[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::timestamptz[], $9::text[], $10::int[], $11::bool[])
ON CONFLICT (instance_id, seq) DO UPDATE
SET ended_at = EXCLUDED.ended_at, outcome = EXCLUDED.outcome, attempts = EXCLUDED.attempts,
    incident = EXCLUDED.incident
