-- Inserts new instances (a batch, one array element per instance).
INSERT INTO __schema__.instances
    (bucket, instance_id, process_id, version, business_key, status, current_step, waiting_for,
     variables, state, seq, started_at, updated_at, ended_at, key_unique)
SELECT __schema__.bucket_of(u.instance_id), u.instance_id, u.process_id, u.version, u.business_key, u.status, u.current_step,
       u.waiting_for, u.variables, u.state, u.seq, u.at, u.at,
       CASE WHEN u.status = 'running' THEN NULL ELSE u.at END, u.key_unique
FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::jsonb[], $9::jsonb[], $10::bigint[], $11::timestamptz[], $12::bool[])
     AS u(instance_id, process_id, version, business_key, status, current_step, waiting_for,
          variables, state, seq, at, key_unique)
