-- Adds the next version of a process.
INSERT INTO __schema__.definitions
    (process_id, version, checksum, document, start_message, receives, deployed_at)
SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6
FROM __schema__.definitions WHERE process_id = $1
RETURNING version
