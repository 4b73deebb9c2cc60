-- Records what became of inbound messages (a batch): correlated, started or dead.
UPDATE __schema__.inbox i
SET status = u.status, instance_id = u.instance_id, reason = u.reason, processed_at = u.at
FROM unnest($1::text[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[])
     AS u(message_id, status, instance_id, reason, at)
WHERE i.message_id = u.message_id
