-- Writes activity rows: new executions, and the end, outcome, attempts, incident flag and
-- first claim (user tasks) of open ones.
INSERT INTO __schema__.activity
    (bucket, instance_id, seq, process_id, version, step_id, kind, started_at, ended_at, outcome, attempts,
     incident, claimed_at)
SELECT __schema__.bucket_of(u.instance_id), u.*
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::int[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::timestamptz[], $9::text[], $10::int[], $11::bool[],
                     $12::timestamptz[])
     AS u(instance_id, seq, process_id, version, step_id, kind, started_at, ended_at, outcome,
          attempts, incident, claimed_at)
ON CONFLICT (bucket, instance_id, seq) DO UPDATE
SET ended_at = EXCLUDED.ended_at, outcome = EXCLUDED.outcome, attempts = EXCLUDED.attempts,
    incident = EXCLUDED.incident, claimed_at = EXCLUDED.claimed_at
