-- Moves an instance's timers to their steps in the new version.
-- $3: the bucket of each id (longrun::bucket::buckets_of): each row is found by one probe of
-- the key (bucket, id), and the partitioned layout reads only the partitions of those buckets.
UPDATE __schema__.timers t SET step_id = u.step_id
FROM unnest($1::uuid[], $2::text[], $3::smallint[]) AS u(timer_id, step_id, bucket)
WHERE t.bucket = u.bucket AND t.timer_id = u.timer_id
