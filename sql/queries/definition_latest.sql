-- The latest version of a process definition.
SELECT version, document FROM __schema__.definitions
WHERE process_id = $1 ORDER BY version DESC LIMIT 1
