-- The running instance of a process with this business key among those whose definition
-- declares the key unique (at most one: instances_running_key_unique).
SELECT instance_id FROM __schema__.instances
WHERE bucket = __schema__.bucket_of_key($2) AND process_id = $1 AND business_key = $2 AND status = 'running' AND key_unique
