-- Records what became of inbound messages (a batch): correlated, started or dead, by id and
-- key ($6). No bucket predicate: with the key's buckets as a second array, the primary key
-- (message_id, bucket) is searched for every pair of id and bucket (n x b probes).
-- The `= ANY` repeats the join key so that the plan reads the batch's rows through the index
-- however small the table was when the plan was cached (a plan made on an empty table would
-- otherwise scan the whole table on every call, as it grows).
UPDATE __schema__.inbox i
SET status = u.status, instance_id = u.instance_id, reason = u.reason, processed_at = u.at
FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[], $6::text[])
     AS u(message_id, status, instance_id, reason, at, key)
WHERE i.message_id = u.message_id AND i.key = u.key AND i.message_id = ANY ($1::text[])
