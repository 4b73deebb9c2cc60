-- Whether an instance with this id exists (an idempotent start's derived id).
SELECT process_id FROM __schema__.instances WHERE bucket = __schema__.bucket_of($1) AND instance_id = $1
