-- longrun migration 0010: keep the BPMN document a version was deployed from.
--
-- Purpose: a process drawn in a modeler keeps its diagram: `longrun export` gives the document
-- back as it was deployed (its layout included) instead of a computed one.
-- Locks: ACCESS EXCLUSIVE on definitions for a moment; adding a nullable column rewrites
-- nothing.

ALTER TABLE __schema__.definitions ADD COLUMN source_bpmn text;
COMMENT ON COLUMN __schema__.definitions.source_bpmn IS
    'The BPMN 2.0 XML the version was deployed from, if it was (returned by longrun export as it was).';
