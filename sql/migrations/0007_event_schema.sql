-- longrun migration 0007: events carry the version of their JSON shape.
--
-- Purpose: when the shape of an event changes, its schema version goes up and events stored
-- with an older version are upcast when read (`machine::upcast`), so old streams keep loading.
-- Every event stored before this migration has the first released shape: version 1.
-- Locks: ACCESS EXCLUSIVE on events for a moment; adding a column with a constant default
-- rewrites nothing.

ALTER TABLE __schema__.events ADD COLUMN schema_version smallint NOT NULL DEFAULT 1;
COMMENT ON COLUMN __schema__.events.schema_version IS
    'Version of the event''s JSON shape when it was written; older shapes are upcast when read.';
