-- One inbound message's fate.
SELECT status, instance_id, reason FROM __schema__.inbox WHERE message_id = $1
