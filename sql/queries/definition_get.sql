-- One version of a process definition.
SELECT document FROM __schema__.definitions WHERE process_id = $1 AND version = $2
