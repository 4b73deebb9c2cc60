-- Keeps inbound messages nobody waits for yet (a batch: id, key and the key's bucket, from
-- longrun::bucket::key_buckets): their `received` rows become `buffered`, in the transaction
-- that inserted them, before any instance of that transaction starts to wait (and may take
-- them).
UPDATE __schema__.inbox i
SET status = 'buffered'
FROM unnest($1::text[], $2::text[], $3::smallint[]) AS u(message_id, key, bucket)
WHERE i.bucket = u.bucket AND i.message_id = u.message_id AND i.key = u.key
  AND i.status = 'received'
