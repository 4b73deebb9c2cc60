-- Writes the new current state of locked instances (a batch), and the version each runs on
-- (changed by a migration). The seq check makes a lost update impossible even if the lock
-- were bypassed: fewer rows than expected aborts.
-- The `= ANY` repeats the join key so that the plan reads the batch's rows through the index
-- however small the table was when the plan was cached (a plan made on an empty table would
-- otherwise scan the whole table on every call, as it grows).
-- $11: the buckets of the ids (longrun::bucket::buckets_of), so that only their partitions are read.
UPDATE __schema__.instances i
SET version = u.version, status = u.status, current_step = u.current_step,
    waiting_for = u.waiting_for, variables = u.variables, state = u.state, seq = u.seq, updated_at = u.at,
    ended_at = CASE WHEN u.status = 'running' THEN NULL ELSE u.at END
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::jsonb[],
            $7::jsonb[], $8::bigint[], $9::timestamptz[], $10::int[])
     AS u(instance_id, expected_seq, status, current_step, waiting_for, variables, state, seq, at,
          version)
WHERE i.instance_id = u.instance_id AND i.seq = u.expected_seq
  AND i.bucket = ANY ($11::smallint[]) AND i.instance_id = ANY ($1::uuid[])
