-- The version of a process whose document has this checksum, if deployed before.
SELECT version FROM __schema__.definitions WHERE process_id = $1 AND checksum = $2
