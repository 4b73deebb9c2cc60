-- The version a tag names.
SELECT version FROM __schema__.definition_tags WHERE process_id = $1 AND tag = $2
