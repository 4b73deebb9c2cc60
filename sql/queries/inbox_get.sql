-- One inbound message's fate, by its id and key.
SELECT status, instance_id, reason FROM __schema__.inbox WHERE bucket = __schema__.bucket_of_key($2) AND message_id = $1
