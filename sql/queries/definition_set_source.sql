-- Keeps the BPMN document a version was first deployed from.
UPDATE __schema__.definitions SET source_bpmn = $3
WHERE process_id = $1 AND version = $2 AND source_bpmn IS NULL
