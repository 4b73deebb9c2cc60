-- Removes finished jobs whose claim is still held (a batch of job id and token pairs). A job
-- missing from the result was taken over: its holder must not record the completion.
-- $3: the bucket of each id (longrun::bucket::buckets_of): each row is found by one probe of
-- the key (bucket, id), and the partitioned layout reads only the partitions of those buckets.
DELETE FROM __schema__.jobs j
USING unnest($1::uuid[], $2::uuid[], $3::smallint[]) AS c(job_id, lease_token, bucket)
WHERE j.bucket = c.bucket AND j.job_id = c.job_id AND j.lease_token = c.lease_token
RETURNING j.job_id
