-- The BPMN document a version was deployed from, if any.
SELECT source_bpmn FROM __schema__.definitions WHERE process_id = $1 AND version = $2
