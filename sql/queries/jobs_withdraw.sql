-- Withdraws jobs whose wait ended otherwise (a timeout or an interrupting timer). A handler
-- still running finds no job when it finishes, and its result is dropped.
-- $2: the bucket of each id (longrun::bucket::buckets_of): each row is found by one probe of
-- the key (bucket, id), and the partitioned layout reads only the partitions of those buckets.
DELETE FROM __schema__.jobs
WHERE (bucket, job_id) IN (SELECT * FROM unnest($2::smallint[], $1::uuid[]))
