-- Records what became of inbound messages (a batch): correlated, started or dead, by id and
-- key ($6).
-- $7: the bucket of each key (longrun::bucket::key_buckets): each row is found by one probe of
-- the key (bucket, message_id), and the partitioned layout reads only those buckets' partitions.
UPDATE __schema__.inbox i
SET status = u.status, instance_id = u.instance_id, reason = u.reason, processed_at = u.at
FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[], $6::text[],
            $7::smallint[])
     AS u(message_id, status, instance_id, reason, at, key, bucket)
WHERE i.bucket = u.bucket AND i.message_id = u.message_id AND i.key = u.key
