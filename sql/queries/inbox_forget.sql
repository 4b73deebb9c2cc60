-- Removes an inbox row recorded earlier in the same transaction, so the message can be
-- delivered on its own later in that transaction (a batch holding two messages for one
-- instance). Never touches a committed row: it runs before the transaction commits.
DELETE FROM __schema__.inbox WHERE bucket = __schema__.bucket_of_key($2) AND message_id = $1
