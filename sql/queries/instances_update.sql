-- Writes the new current state of locked instances (a batch), and the version each runs on
-- (changed by a migration). The seq check makes a lost update impossible even if the lock
-- were bypassed: fewer rows than expected aborts.
-- $11: the bucket of each id (longrun::bucket::buckets_of): each row is found by one probe of
-- the key (bucket, id), and the partitioned layout reads only the partitions of those buckets.
UPDATE __schema__.instances i
SET version = u.version, status = u.status, current_step = u.current_step,
    waiting_for = u.waiting_for, variables = u.variables, state = u.state, seq = u.seq, updated_at = u.at,
    ended_at = CASE WHEN u.status = 'running' THEN NULL ELSE u.at END
FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::jsonb[],
            $7::jsonb[], $8::bigint[], $9::timestamptz[], $10::int[], $11::smallint[])
     AS u(instance_id, expected_seq, status, current_step, waiting_for, variables, state, seq, at,
          version, bucket)
WHERE i.bucket = u.bucket AND i.instance_id = u.instance_id AND i.seq = u.expected_seq
