-- Running instances of one process version, in id order, after a given id (for paging).
SELECT instance_id FROM __schema__.instances
WHERE process_id = $1 AND version = $2 AND status = 'running' AND instance_id > $3
ORDER BY instance_id
LIMIT $4
