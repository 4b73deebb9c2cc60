-- Moves an instance's jobs to their steps (and handlers) in the new version.
-- $4: the bucket of each id (longrun::bucket::buckets_of): each row is found by one probe of
-- the key (bucket, id), and the partitioned layout reads only the partitions of those buckets.
UPDATE __schema__.jobs j SET step_id = u.step_id, handler = u.handler
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::smallint[]) AS u(job_id, step_id, handler, bucket)
WHERE j.bucket = u.bucket AND j.job_id = u.job_id
